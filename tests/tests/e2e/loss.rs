//! Loss is counted, never silent: with nobody reading, a small ring
//! overflows; the kernel counts every record it could not write, and after
//! draining, what arrived plus what was lost is what was sent.

use std::time::Duration;

use mamori::capture::{Capture, Options};

#[test]
fn a_full_ring_counts_its_losses() {
    let opts = Options {
        syscalls: ["openat", "close"].into_iter().map(String::from).collect(),
        ring_bytes: 256 << 10,
        ..Options::default()
    };
    let mut cap = Capture::start(&opts).unwrap();
    let counters = cap.counters_handle().unwrap();
    // 100k open/close pairs = 200k records of >= 170 bytes: far beyond 256 KiB.
    let status = std::process::Command::new(mamori_e2e::sibling_binary("mamori-actor"))
        .args(["flood", "100000"])
        .status()
        .unwrap();
    assert!(status.success());
    let before = counters.read();
    let lost: u64 = before.lost_ring_full.iter().sum();
    let sent: u64 = before.sent.iter().sum();
    assert!(lost > 0, "{before:?}");
    assert!(
        sent + lost >= 200_000,
        "every record is either sent or counted lost: {before:?}"
    );

    // Now read: everything that was sent arrives, nothing more.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let received = rt.block_on(async {
        let (tx, mut rx) = tokio::sync::mpsc::channel(1 << 12);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let reader = cap.reader(tx, Duration::from_millis(5), stop_rx).unwrap();
        let task = tokio::spawn(reader.run());
        // Counted while the reader runs: on a busy host the queue would
        // fill, and a reader held back by a full queue never stops.
        let counter = tokio::spawn(async move {
            let mut n = 0u64;
            while rx.recv().await.is_some() {
                n += 1;
            }
            n
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        stop.send(true).unwrap();
        task.await.unwrap();
        counter.await.unwrap()
    });
    let after = counters.read();
    assert_eq!(after.decode_errors, 0);
    // Other processes may add a few records after `before`; none go missing.
    assert!(received >= sent, "received {received} < sent {sent}");
    assert_eq!(received, after.received);
    assert!(received <= after.sent.iter().sum::<u64>());
}
