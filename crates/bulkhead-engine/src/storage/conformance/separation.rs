//! Two tenants' storage in one group share nothing: the same keys written, read, deleted,
//! range-deleted and compacted through one never touch the other.

use super::{BACKENDS, TwoTenants, bytes, keys_of, put};
use crate::storage::WriteSet;

#[test]
fn a_store_reads_and_writes_its_own_tenant_only() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(
            t.a.as_ref(),
            &[(b"k1", b"a1"), (b"k2", b"a2"), (b"k3", b"a3")],
        );
        put(
            t.b.as_ref(),
            &[(b"k1", b"b1"), (b"k2", b"b2"), (b"k3", b"b3")],
        );
        assert_eq!(
            t.b.multi_get(&bytes(&["k1", "k9"])).unwrap(),
            [Some(b"b1".to_vec()), None],
            "{backend:?}"
        );
        let mut set = WriteSet::default();
        set.delete(b"k1".to_vec());
        set.delete_range((b"k2".to_vec(), b"k3".to_vec()));
        t.a.write(set).unwrap();
        t.a.compact((Vec::new(), vec![0xff])).unwrap();
        assert_eq!(keys_of(t.a.as_ref()), bytes(&["k3"]), "{backend:?}");
        assert_eq!(
            keys_of(t.b.as_ref()),
            bytes(&["k1", "k2", "k3"]),
            "{backend:?}"
        );
        assert_eq!(
            t.b.last_key((b"k".to_vec(), b"l".to_vec())).unwrap(),
            Some(b"k3".to_vec()),
            "{backend:?}"
        );
        assert_eq!(
            t.a.last_key((b"k".to_vec(), b"k3".to_vec())).unwrap(),
            None,
            "{backend:?}: the other tenant's k1 and k2 are not this one's"
        );
    }
}
