//! Graph search touches vectors and link lists at random across the whole index, so with 4 KiB
//! pages nearly every vector read is also a TLB miss. Large buffers are therefore allocated
//! fresh and advised for transparent huge pages (`MADV_HUGEPAGE`) before first touch, which
//! works on kernels whose THP mode is `madvise` (the common default) as well as `always`.

/// Buffers smaller than this are grown the ordinary way: one huge page is 2 MiB.
const MIN_HUGE_BYTES: usize = 4 << 20;

/// Like `Vec::reserve(additional)`, but once the buffer is large, grows it into a fresh
/// allocation advised for huge pages (copying the contents) instead of reallocating in place,
/// since pages already faulted in as 4 KiB would stay that way.
pub(crate) fn reserve<T: Copy>(v: &mut Vec<T>, additional: usize) {
    reserve_with(v, additional, |x| *x);
}

/// [`reserve`] for element types that are not `Copy` (atomics), moved over by `copy`.
pub(crate) fn reserve_with<T>(v: &mut Vec<T>, additional: usize, copy: impl Fn(&T) -> T) {
    let needed = v.len() + additional;
    if needed <= v.capacity() {
        return;
    }
    let new_cap = needed.max(v.capacity().saturating_mul(2));
    let bytes = new_cap.saturating_mul(size_of::<T>());
    if bytes < MIN_HUGE_BYTES {
        v.reserve(new_cap - v.len());
        return;
    }
    let mut fresh: Vec<T> = Vec::with_capacity(new_cap);
    advise_huge(fresh.as_ptr().cast(), bytes);
    fresh.extend(v.iter().map(copy));
    *v = fresh;
}

#[cfg(target_os = "linux")]
fn advise_huge(ptr: *const u8, len: usize) {
    const PAGE: usize = 4096;
    let start = (ptr as usize).next_multiple_of(PAGE);
    let end = (ptr as usize + len) & !(PAGE - 1);
    if end <= start {
        return;
    }
    // SAFETY: `[start, end)` is page-aligned and lies inside an allocation of `len` bytes at
    // `ptr` that the caller owns. MADV_HUGEPAGE only changes how the kernel backs these pages;
    // it never changes their contents or validity, so no Rust invariant can be affected. A
    // failure (e.g. THP disabled) just leaves normal pages, so the result is ignored.
    #[allow(unsafe_code)]
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge(_ptr: *const u8, _len: usize) {}

#[cfg(test)]
mod tests {
    #[test]
    fn reserve_keeps_contents_and_grows() {
        let mut v: Vec<u32> = (0..10).collect();
        super::reserve(&mut v, 5);
        assert!(v.capacity() >= 15);
        let mut big: Vec<f32> = vec![1.5; 1 << 20];
        super::reserve(&mut big, 1 << 20);
        assert!(big.capacity() >= 2 << 20);
        assert_eq!(big.len(), 1 << 20);
        assert!(big.iter().all(|&x| x == 1.5));
    }
}
