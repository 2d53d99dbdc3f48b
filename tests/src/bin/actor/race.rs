//! The time-of-check/time-of-use race on a path argument (the
//! `race-unlink` action).

/// Unlinks `n` times through one buffer that holds `shown`, while (unless
/// `still`) another thread rewrites it to `hidden` and back.
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
    let write = |buf: &[AtomicU8], name: &[u8]| {
        for (i, b) in buf.iter().enumerate() {
            b.store(name.get(i).copied().unwrap_or(0), Relaxed);
        }
    };
    write(&buf, shown);
    let done = Arc::new(AtomicBool::new(false));
    let started = Arc::new(AtomicBool::new(false));
    let flipper = (!still).then(|| {
        let (buf, done, started) = (buf.clone(), done.clone(), started.clone());
        let (shown, hidden) = (shown.to_vec(), hidden.to_vec());
        std::thread::spawn(move || {
            while !done.load(Relaxed) {
                write(&buf, &hidden);
                write(&buf, &shown);
                started.store(true, Relaxed);
            }
        })
    });
    // On a busy host the writer may not run before the calls are over.
    while flipper.is_some() && !started.load(Relaxed) {
        std::thread::yield_now();
    }
    for _ in 0..n {
        // SAFETY: the buffer always holds a NUL within its length.
        unsafe { libc::unlink(buf.as_ptr() as *const libc::c_char) };
    }
    done.store(true, Relaxed);
    if let Some(t) = flipper {
        t.join().unwrap();
    }
}
