//! Ranges are half-open `[start, end)`, for deletion and for the last key alike.

use super::{BACKENDS, TwoTenants, bytes, keys_of, put};
use crate::storage::WriteSet;

#[test]
fn delete_range_removes_from_its_start_up_to_not_including_its_end() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(
            t.a.as_ref(),
            &[
                (b"a", b""),
                (b"b", b""),
                (b"b1", b""),
                (b"c", b""),
                (b"d", b""),
            ],
        );
        let mut set = WriteSet::default();
        set.delete_range((b"b".to_vec(), b"c".to_vec()));
        t.a.write(set).unwrap();
        assert_eq!(
            keys_of(t.a.as_ref()),
            bytes(&["a", "c", "d"]),
            "{backend:?}"
        );
        let mut set = WriteSet::default();
        set.delete_range((b"c".to_vec(), b"c".to_vec()));
        t.a.write(set).unwrap();
        assert_eq!(
            keys_of(t.a.as_ref()),
            bytes(&["a", "c", "d"]),
            "{backend:?}: an empty range deletes nothing"
        );
        let mut set = WriteSet::default();
        set.delete(b"a".to_vec());
        set.delete_range((b"z".to_vec(), b"a".to_vec()));
        assert!(
            t.a.write(set).is_err(),
            "{backend:?}: a reversed range is refused"
        );
        assert_eq!(
            keys_of(t.a.as_ref()),
            bytes(&["a", "c", "d"]),
            "{backend:?}: and nothing of its set is applied"
        );
    }
}

#[test]
fn the_last_key_of_a_range_excludes_its_end() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"k1", b""), (b"k2", b""), (b"m", b"")]);
        let last = |start: &[u8], end: &[u8]| t.a.last_key((start.to_vec(), end.to_vec())).unwrap();
        assert_eq!(last(b"k", b"m"), Some(b"k2".to_vec()), "{backend:?}");
        assert_eq!(last(b"k", b"k2"), Some(b"k1".to_vec()), "{backend:?}");
        assert_eq!(last(b"l", b"m"), None, "{backend:?}: only the end itself");
        assert_eq!(last(b"a", b"k"), None, "{backend:?}");
        assert_eq!(last(b"a", b"zz"), Some(b"m".to_vec()), "{backend:?}");
    }
}
