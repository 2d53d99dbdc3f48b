//! Bounds the verifier can see.
//!
//! LLVM drops a mask it can prove redundant (after a range check) and may
//! then address memory through an unmasked copy of the value; the verifier,
//! which tracks registers, not proofs, rejects the access. An AND inside
//! inline asm is opaque to LLVM, so it survives and the verifier sees it.

/// `v & mask`, kept in the generated code.
#[inline(always)]
pub fn bound(v: u64, mask: u64) -> u64 {
    let mut v = v;
    // SAFETY: a register AND; no memory access.
    unsafe {
        core::arch::asm!("{0} &= {1}", inout(reg) v, in(reg) mask, options(pure, nomem, nostack))
    };
    v
}
