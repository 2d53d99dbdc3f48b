//! Alert delivery: ECS mapping rate, spool write rate (synced), and with
//! `MAMORI_BENCH_ES_URL` set, alerts per second through the whole
//! Elasticsearch output (writer → spool → sender → `_bulk`) into a real
//! node. Run with `cargo xtask bench delivery` (it starts the node).
#![allow(clippy::expect_used, reason = "a benchmark: failing loudly is right")]

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use mamori::{
    alert::{Alert, FieldValue as F, Priority, Source},
    config::{ElasticsearchOutput, IndexMode},
    outputs::{
        ecs::EcsMapper,
        elasticsearch::{
            Output,
            bulk::Doc,
            configure::{Overrides, settings},
        },
        identity::Identity,
        spool::{Limits, Spool},
    },
    telemetry::metrics::Metrics,
};

fn alert(i: u64) -> Alert {
    let s = |v: &str| F::Str(v.into());
    Alert {
        time_ns: 1_795_606_870_000_000_000 + i * 1000,
        rule: "Credential file read by unexpected process".into(),
        description: "A process outside the allow list read a credential file.".into(),
        ruleset: "mamori_rules.yaml".into(),
        priority: Priority::Warning,
        source: Source::Syscall,
        tags: vec![
            "filesystem".into(),
            "T1003.008".into(),
            "mitre_credential_access".into(),
        ],
        message: format!(
            "Credential file /etc/shadow read by cat (pid={i} exe=/usr/bin/cat cmdline=cat /etc/shadow parent=bash user=root uid=0 container=host)"
        ),
        output_fields: vec![
            ("fd.name".into(), s("/etc/shadow")),
            ("proc.name".into(), s("cat")),
            ("proc.pid".into(), F::Int(i as i64)),
            ("proc.cmdline".into(), s("cat /etc/shadow")),
            ("user.name".into(), s("root")),
        ],
        hostname: "bench-node".into(),
        event: None,
        context: vec![
            ("evt.type", s("openat")),
            ("evt.rawres", F::Int(3)),
            ("proc.pid", F::Int(i as i64)),
            ("thread.tid", F::Int(i as i64)),
            ("proc.name", s("cat")),
            ("proc.exepath", s("/usr/bin/cat")),
            ("proc.cmdline", s("cat /etc/shadow")),
            ("proc.cwd", s("/root")),
            ("proc.pid.ts", F::Int(1_795_606_869_000_000_000)),
            ("proc.ppid", F::Int(1000)),
            ("proc.pname", s("bash")),
            ("proc.pexepath", s("/usr/bin/bash")),
            ("proc.pcmdline", s("bash")),
            ("user.uid", F::Int(0)),
            ("user.name", s("root")),
            ("group.gid", F::Int(0)),
            ("group.name", s("root")),
            ("fd.typechar", s("f")),
            ("fd.name", s("/etc/shadow")),
            ("fd.directory", s("/etc")),
            ("fd.filename", s("shadow")),
            ("container.id", s("host")),
            (
                "proc.argv",
                F::List(vec!["cat".into(), "/etc/shadow".into()]),
            ),
        ],
    }
}

fn mapper(namespace: &str) -> EcsMapper {
    EcsMapper {
        identity: Identity::detect("bench-node", std::path::Path::new("/")),
        namespace: namespace.into(),
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn main() {
    let m = mapper("bench");
    // ECS mapping.
    let n = 50_000u64;
    let t = Instant::now();
    let mut bytes = 0usize;
    for i in 0..n {
        let (id, doc) = m.document(&alert(i), i);
        bytes += id.len() + doc.to_string().len();
    }
    let el = t.elapsed();
    println!(
        "ecs mapping: {n} alerts in {:.2} s = {:.0} alerts/s ({:.1} µs each, {} bytes per document)",
        el.as_secs_f64(),
        per_sec(n, el),
        el.as_secs_f64() * 1e6 / n as f64,
        bytes / n as usize
    );

    // Spool writes, synced to disk per batch.
    let docs: Vec<Vec<u8>> = (0..20_000u64)
        .map(|i| {
            let (id, doc) = m.document(&alert(i), i);
            Doc::encode(&id, i, doc.to_string().as_bytes())
        })
        .collect();
    let size: usize = docs.iter().map(Vec::len).sum::<usize>() / docs.len();
    let dir = std::env::temp_dir().join(format!("mamori-bench-spool-{}", std::process::id()));
    for batch in [1usize, 100] {
        let _ = std::fs::remove_dir_all(&dir);
        let mut spool = Spool::open(&dir, Limits::with_max(1 << 30)).expect("spool");
        let count = if batch == 1 { 2_000 } else { docs.len() };
        let t = Instant::now();
        for chunk in docs[..count].chunks(batch) {
            spool.append(chunk).expect("append");
        }
        let el = t.elapsed();
        println!(
            "spool append, fsync per batch of {batch:>3}: {count} alerts in {:.2} s = {:.0} alerts/s, {:.1} MB/s ({size} bytes per record)",
            el.as_secs_f64(),
            per_sec(count as u64, el),
            per_sec((count * size) as u64, el) / 1e6
        );
        let t = Instant::now();
        let mut read = 0;
        loop {
            let r = spool.read(500, 5 << 20).expect("read");
            if r.is_empty() {
                break;
            }
            read += r.len();
        }
        println!(
            "spool read back: {read} records in {:.3} s = {:.0} records/s",
            t.elapsed().as_secs_f64(),
            per_sec(read as u64, t.elapsed())
        );
    }
    let _ = std::fs::remove_dir_all(&dir);

    if let Ok(url) = std::env::var("MAMORI_BENCH_ES_URL") {
        into_elasticsearch(&url);
    } else {
        println!(
            "into Elasticsearch: skipped (set MAMORI_BENCH_ES_URL, or run `cargo xtask bench delivery`)"
        );
    }
}

/// Alerts per second through the whole output into a real node.
fn into_elasticsearch(url: &str) {
    let n = 50_000u64;
    let namespace = format!("bench{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("mamori-bench-es-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cfg = ElasticsearchOutput {
        url: Some(url.into()),
        namespace: Some(namespace.clone()),
        index: Some(IndexMode::DataStream),
        spool_dir: Some(dir.clone()),
        // Alerts only: status documents are not what is measured.
        status_interval_s: Some(0),
        ..Default::default()
    };
    let s = settings(&cfg, &Overrides::default(), std::path::Path::new("bench"))
        .expect("settings")
        .expect("url");
    let metrics = Arc::new(Metrics::new(&mamori::event::TYPE_NAMES));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let out = Output::open(s, mapper(&namespace), &metrics).expect("output");
        let stats = out.stats();
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let task = tokio::spawn(out.run(rx));
        let t = Instant::now();
        for i in 0..n {
            tx.send(Arc::new(alert(i))).await.expect("send");
        }
        let queued = t.elapsed();
        while stats.indexed.load(Ordering::Relaxed) + stats.duplicates.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(t.elapsed() < Duration::from_secs(600), "delivery stalled");
        }
        let el = t.elapsed();
        println!(
            "into Elasticsearch (writer → spool → _bulk, batches of 500): {n} alerts in {:.2} s = {:.0} alerts/s (spooled in {:.2} s; {} bulk requests, {} failed)",
            el.as_secs_f64(),
            per_sec(n, el),
            queued.as_secs_f64(),
            stats.bulk_requests.load(Ordering::Relaxed),
            stats.bulk_failures.load(Ordering::Relaxed),
        );
        drop(tx);
        let _ = task.await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
