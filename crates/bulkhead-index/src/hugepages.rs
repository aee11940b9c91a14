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
    let Some(capacity) = grown_capacity(v, additional) else {
        return;
    };
    if capacity.saturating_mul(size_of::<T>()) < MIN_HUGE_BYTES {
        v.reserve(capacity - v.len());
    } else {
        *v = copied(v, capacity, copy);
    }
}

/// [`grown_with`] for `Copy` elements.
pub(crate) fn grown<T: Copy>(v: &Vec<T>, additional: usize) -> Option<Vec<T>> {
    grown_with(v, additional, |x| *x)
}

/// What [`reserve_with`] would grow `v` into, made as a copy so that `v` stays untouched and
/// readable meanwhile: `None` if `v` has room already. A caller that holds `v` shared swaps
/// the copy in later, which costs nothing, instead of copying and faulting in a buffer of
/// twice the size while everyone waits (see `VectorIndex::insert`).
pub(crate) fn grown_with<T>(
    v: &Vec<T>,
    additional: usize,
    copy: impl Fn(&T) -> T,
) -> Option<Vec<T>> {
    grown_capacity(v, additional).map(|capacity| copied(v, capacity, copy))
}

/// The capacity `v` grows to for `additional` more elements (doubling), if it must grow.
fn grown_capacity<T>(v: &Vec<T>, additional: usize) -> Option<usize> {
    let needed = v.len() + additional;
    (needed > v.capacity()).then(|| needed.max(v.capacity().saturating_mul(2)))
}

/// A fresh buffer of `capacity` holding `v`'s contents, advised for huge pages if large.
fn copied<T>(v: &[T], capacity: usize, copy: impl Fn(&T) -> T) -> Vec<T> {
    let mut fresh: Vec<T> = Vec::with_capacity(capacity);
    let bytes = capacity.saturating_mul(size_of::<T>());
    if bytes >= MIN_HUGE_BYTES {
        advise_huge(fresh.as_ptr().cast(), bytes);
    }
    fresh.extend(v.iter().map(copy));
    fresh
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

    #[test]
    fn a_grown_copy_has_the_contents_and_room_and_leaves_the_original_alone() {
        let mut full: Vec<u32> = (0..8).collect();
        full.shrink_to_fit();
        let before = (full.as_ptr(), full.capacity());
        let grown = super::grown(&full, 1).expect("a full buffer grows");
        assert_eq!(grown, full);
        assert!(grown.capacity() >= 2 * full.capacity());
        assert_eq!((full.as_ptr(), full.capacity()), before);

        let mut roomy = Vec::<u32>::with_capacity(16);
        roomy.extend(0..8);
        assert!(super::grown(&roomy, 8).is_none());
        assert!(super::grown(&roomy, 9).is_some());
    }
}
