//! The time-of-check/time-of-use race on a path argument (the
//! `race-unlink` action).

use std::time::{Duration, Instant};

/// How long the racing calls go on at least: on a busy host a fixed count
/// of calls can all run while the writer waits for a CPU.
const RACE_FOR: Duration = Duration::from_millis(100);

/// Unlinks at least `n` times through one buffer that holds `shown`,
/// while (unless `still`) another thread rewrites it to `hidden` and back
/// (then for at least [`RACE_FOR`]).
pub fn race_unlink(shown: &[u8], hidden: &[u8], n: &[u8], still: bool) {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, AtomicU8, Ordering::Relaxed},
    };
    let n: u32 = String::from_utf8(n.to_vec()).unwrap().parse().unwrap();
    // One buffer both threads see, written byte by byte (as a racing thread
    // does): the NUL-terminated name of either file.
    let size = shown.len().max(hidden.len()) + 1;
    let buf: Arc<Vec<AtomicU8>> = Arc::new((0..size).map(|_| AtomicU8::new(0)).collect());
    // The writer rewrites only from the first byte the names differ in:
    // with a long common prefix (a deep directory) rewriting all of it
    // would leave the name stable most of the time and the race rare.
    let from = shown.iter().zip(hidden).take_while(|(a, b)| a == b).count();
    let write = |buf: &[AtomicU8], name: &[u8], from: usize| {
        for (i, b) in buf.iter().enumerate().skip(from) {
            b.store(name.get(i).copied().unwrap_or(0), Relaxed);
        }
    };
    write(&buf, shown, 0);
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let flipper = (!still).then(|| {
        let (buf, done, started) = (buf.clone(), done.clone(), started.clone());
        let (shown, hidden) = (shown.to_vec(), hidden.to_vec());
        std::thread::spawn(move || {
            if cpus > 1 {
                run_on(1);
            }
            while !done.load(Relaxed) {
                write(&buf, &hidden, from);
                write(&buf, &shown, from);
                started.store(true, Relaxed);
            }
        })
    });
    // The caller and the writer on different CPUs, so that they truly run
    // at once rather than in turns.
    if cpus > 1 && flipper.is_some() {
        run_on(0);
    }
    // On a busy host the writer may not run before the calls are over.
    while flipper.is_some() && !started.load(Relaxed) {
        std::thread::yield_now();
    }
    let start = Instant::now();
    let least = if flipper.is_some() {
        RACE_FOR
    } else {
        Duration::ZERO
    };
    let mut calls = 0u32;
    while calls < n || start.elapsed() < least {
        // SAFETY: the buffer always holds a NUL within its length.
        unsafe { libc::unlink(buf.as_ptr() as *const libc::c_char) };
        calls += 1;
    }
    done.store(true, Relaxed);
    if let Some(t) = flipper {
        t.join().unwrap();
    }
}

/// Binds the calling thread to one CPU.
fn run_on(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET writes within it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of_val(&set), &set);
    }
}
