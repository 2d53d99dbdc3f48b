//! The capture benchmark's report: `target/bench/capture.json` (every
//! sample), `capture.md` (the tables, also printed) and `capture.svg` (the
//! overhead of each subject on each workload, as bars).

use std::fmt::Write as _;

use serde_json::Value;

use crate::cmd;

pub fn write(doc: &Value) -> anyhow::Result<()> {
    let dir = cmd::root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("capture.json"), serde_json::to_string_pretty(doc)?)?;
    let md = markdown(doc);
    std::fs::write(dir.join("capture.md"), &md)?;
    std::fs::write(dir.join("capture.svg"), svg(doc))?;
    println!("{md}");
    println!(
        "written: {0}/capture.json, {0}/capture.md, {0}/capture.svg",
        dir.display()
    );
    Ok(())
}

fn labels(doc: &Value) -> Vec<String> {
    doc["subjects"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn markdown(doc: &Value) -> String {
    let subjects = labels(doc);
    let mut out = String::new();
    let m = &doc["machine"];
    let _ = writeln!(
        out,
        "### Capture overhead ({}, {} CPUs, kernel {}, commit {}, {})\n",
        m["cpu_model"].as_str().unwrap_or("?"),
        m["cpus"],
        m["kernel"].as_str().unwrap_or("?"),
        m["commit"].as_str().unwrap_or("?"),
        m["date"].as_str().unwrap_or("?"),
    );
    let _ = writeln!(
        out,
        "Workload pinned to CPU 1; {} rounds, subject order rotating each round; \
         median ns per operation (p25–p75), and the median added over no agent.\n",
        doc["rounds"]
    );
    let _ = write!(out, "| workload |");
    for s in &subjects {
        let _ = write!(out, " {s} |");
    }
    let _ = write!(out, "\n| --- |");
    for _ in &subjects {
        let _ = write!(out, " --- |");
    }
    out.push('\n');
    if let Some(loops) = doc["loops"].as_object() {
        for (kind, l) in ordered(loops) {
            let _ = write!(out, "| {kind}: {} |", l["desc"].as_str().unwrap_or(""));
            for s in &subjects {
                let x = &l["subjects"][s];
                if s == "no agent" {
                    let _ = write!(
                        out,
                        " {:.0} ({:.0}–{:.0}) |",
                        f(&x["median_ns"]),
                        f(&x["p25_ns"]),
                        f(&x["p75_ns"])
                    );
                } else {
                    let _ = write!(
                        out,
                        " {:.0} ({:.0}–{:.0}) **{:+.0} ns, {:+.0} %** |",
                        f(&x["median_ns"]),
                        f(&x["p25_ns"]),
                        f(&x["p75_ns"]),
                        f(&x["added_ns"]),
                        f(&x["added_pct"])
                    );
                }
            }
            out.push('\n');
        }
    }
    out.push_str("\nThe agent's own share of each loop (CPU, as % of the loop's time, and per event it received):\n\n| workload |");
    let mamori: Vec<&String> = subjects
        .iter()
        .filter(|s| s.starts_with("mamori") || s.starts_with("baseline"))
        .collect();
    for s in &mamori {
        let _ = write!(out, " {s} |");
    }
    out.push_str("\n| --- |");
    for _ in &mamori {
        out.push_str(" --- |");
    }
    out.push('\n');
    if let Some(loops) = doc["loops"].as_object() {
        for (kind, l) in ordered(loops) {
            let _ = write!(out, "| {kind} |");
            for s in &mamori {
                let x = &l["subjects"][s.as_str()];
                let _ = write!(
                    out,
                    " {:.1} %, {:.0} events, {:.0} ns/event |",
                    f(&x["agent_cpu_pct_of_loop"]),
                    f(&x["agent_events"]),
                    f(&x["agent_ns_per_event"])
                );
            }
            out.push('\n');
        }
    }
    out.push_str("\n| agent, during the loops | events received | events/s | dropped in the kernel (no rule could match) | lost | CPU, % of loop time | CPU µs per 1,000 events | RSS | BPF maps |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    if let Some(a) = doc["agent"].as_object() {
        for (label, u) in a {
            let _ = writeln!(
                out,
                "| {label} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} % | {:.0} | {:.1} MiB | {:.1} MiB |",
                f(&u["events"]),
                f(&u["events_per_s"]),
                f(&u["filtered_in_kernel"]),
                f(&u["lost"]),
                f(&u["cpu_pct_of_loops"]),
                f(&u["cpu_us_per_1000_events"]),
                f(&u["rss_mib"]),
                f(&u["bpf_map_mib"]),
            );
        }
    }
    out.push_str("\nKernel time per operation, from the kernel's BPF statistics (a separate pass, statistics on): ns of BPF per operation, and each program's ns per run.\n\n| subject | workload | BPF ns/op | programs (ns/run × runs/op) |\n| --- | --- | --- | --- |\n");
    if let Some(p) = doc["bpf_programs"].as_object() {
        for (label, loops) in p {
            for (kind, l) in loops.as_object().map(ordered).unwrap_or_default() {
                let progs: Vec<String> = l["programs"]
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(n, v)| {
                                format!(
                                    "{n} {:.0} × {:.2}",
                                    f(&v["ns_per_run"]),
                                    f(&v["runs_per_op"])
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "| {label} | {kind} | {:.0} | {} |",
                    f(&l["bpf_ns_per_op"]),
                    progs.join(", ")
                );
            }
        }
    }
    let i = &doc["idle"];
    if !i.is_null() {
        let _ = writeln!(
            out,
            "\nIdle ({}, {} s on this host): CPU {:.2} % of one core, RSS {:.1} MiB, BPF maps {:.1} MiB.",
            i["subject"].as_str().unwrap_or("?"),
            i["seconds"],
            f(&i["cpu_pct"]),
            f(&i["rss_mib"]),
            f(&i["bpf_map_mib"])
        );
    }
    if let Some(mac) = doc["macro"].as_object() {
        out.push_str("\n| macro workload | ");
        out.push_str(&subjects.join(" | "));
        out.push_str(" |\n| --- |");
        for _ in &subjects {
            out.push_str(" --- |");
        }
        out.push('\n');
        for (name, rows) in mac {
            let _ = write!(out, "| {name} |");
            for s in &subjects {
                let r = &rows[s];
                if s == "no agent" {
                    let _ = write!(out, " {:.1} |", f(&r["median"]));
                } else {
                    let _ = write!(
                        out,
                        " {:.1} ({:+.1} %) |",
                        f(&r["median"]),
                        f(&r["slowdown_pct"])
                    );
                }
            }
            out.push('\n');
        }
    }
    out
}

/// The loops in the suite's order.
fn ordered(m: &serde_json::Map<String, Value>) -> Vec<(&str, &Value)> {
    let mut v: Vec<(&str, &Value)> = m.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let pos = |k: &str| super::loops::LOOPS.iter().position(|(n, _, _)| *n == k);
    v.sort_by_key(|(k, _)| pos(k));
    v
}

/// Bars of the added cost (% over no agent) per workload and subject.
fn svg(doc: &Value) -> String {
    let subjects: Vec<String> = labels(doc)
        .into_iter()
        .filter(|s| s != "no agent")
        .collect();
    let colours = ["#888888", "#1f77b4", "#d62728", "#2ca02c"];
    let loops: Vec<(&str, &Value)> = doc["loops"].as_object().map(ordered).unwrap_or_default();
    let max = loops
        .iter()
        .flat_map(|(_, l)| {
            subjects
                .iter()
                .map(move |s| f(&l["subjects"][s]["added_pct"]))
        })
        .filter(|x| x.is_finite())
        .fold(10.0f64, f64::max);
    let (left, bar, gap, width) = (230.0, 14.0, 10.0, 520.0);
    let group = bar * subjects.len() as f64 + gap;
    let height = 60.0 + group * loops.len() as f64 + 20.0 * subjects.len() as f64;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <text x=\"10\" y=\"18\" font-size=\"13\">Added cost over no agent, % (median; workload pinned to one CPU)</text>\n",
        left + width + 80.0
    );
    for (i, (kind, l)) in loops.iter().enumerate() {
        let y0 = 40.0 + group * i as f64;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{kind}</text>",
            left - 8.0,
            y0 + group / 2.0
        );
        for (j, subj) in subjects.iter().enumerate() {
            let pct = f(&l["subjects"][subj]["added_pct"]);
            let w = if pct.is_finite() {
                (pct.max(0.0) / max) * width
            } else {
                0.0
            };
            let y = y0 + bar * j as f64;
            let _ = writeln!(
                s,
                "<rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\">{pct:+.0} %</text>",
                bar - 2.0,
                colours[j % colours.len()],
                left + w + 4.0,
                y + bar - 4.0
            );
        }
    }
    let ly = 40.0 + group * loops.len() as f64 + 10.0;
    for (j, subj) in subjects.iter().enumerate() {
        let y = ly + 18.0 * j as f64;
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{y}\" width=\"12\" height=\"12\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">{subj}</text>",
            colours[j % colours.len()],
            left + 18.0,
            y + 10.0
        );
    }
    s.push_str("</svg>\n");
    s
}
