//! Writes are atomic sets of puts and deletes; reads see the last write of each key.

use super::{BACKENDS, TwoTenants, bytes, keys_of, put};
use crate::storage::{StorageBackend, WriteSet, Written};

#[test]
fn a_read_sees_the_last_write_of_each_key() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"k1", b"one"), (b"k2", b"two")]);
        put(t.a.as_ref(), &[(b"k1", b"uno")]);
        let got = t.a.multi_get(&bytes(&["k1", "k2", "k3"])).unwrap();
        assert_eq!(
            got,
            [Some(b"uno".to_vec()), Some(b"two".to_vec()), None],
            "{backend:?}"
        );
    }
}

#[test]
fn a_write_set_applies_in_order_and_whole() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"gone", b"x")]);
        let mut set = WriteSet::default();
        set.put(b"k".to_vec(), b"first".to_vec());
        set.delete(b"gone".to_vec());
        set.put(b"k".to_vec(), b"second".to_vec());
        set.delete(b"never-there".to_vec());
        t.a.write(set).unwrap();
        assert_eq!(keys_of(t.a.as_ref()), bytes(&["k"]), "{backend:?}");
        assert_eq!(
            t.a.multi_get(&bytes(&["k"])).unwrap(),
            [Some(b"second".to_vec())],
            "{backend:?}: later operations of a set win"
        );
    }
}

#[test]
fn unsynced_and_empty_writes() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        t.a.write(WriteSet::default()).unwrap();
        assert!(keys_of(t.a.as_ref()).is_empty(), "{backend:?}");
        let mut set = WriteSet::default();
        set.put(b"audit".to_vec(), b"event".to_vec());
        t.a.write_unsynced(set).unwrap();
        assert_eq!(keys_of(t.a.as_ref()), bytes(&["audit"]), "{backend:?}");
    }
}

#[test]
fn empty_keys_and_values_are_values_like_any_other() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"", b"empty key"), (b"k", b"")]);
        let got = t.a.multi_get(&[Vec::new(), b"k".to_vec()]).unwrap();
        assert_eq!(
            got,
            [Some(b"empty key".to_vec()), Some(Vec::new())],
            "{backend:?}"
        );
    }
}

#[test]
fn a_large_set_is_applied_whole_and_durable_when_apply_returns() {
    let large = || {
        let mut set = WriteSet::default();
        for i in 0..64 {
            set.put(format!("k{i:02}").into_bytes(), vec![b'v'; 8 << 10]);
        }
        set
    };
    let small = || {
        let mut set = WriteSet::default();
        set.put(b"small".to_vec(), b"v".to_vec());
        set
    };
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        let synced = t.a_synced();
        // 512 KiB with syncing on: RocksDB writes it around the group's shared log and flushes
        // it before `apply` returns; memory has no log to keep it out of.
        let expected = match backend {
            StorageBackend::RocksDb => Written::Durable,
            StorageBackend::Memory => Written::InLog,
        };
        assert_eq!(synced.apply(large()).unwrap(), expected, "{backend:?}");
        assert_eq!(keys_of(t.a.as_ref()).len(), 64, "{backend:?}");
        assert_eq!(
            synced.apply(small()).unwrap(),
            Written::InLog,
            "{backend:?}"
        );
        // Without syncs the log is durability enough, whatever the size.
        assert_eq!(t.a.apply(large()).unwrap(), Written::InLog, "{backend:?}");
        assert_eq!(keys_of(t.a.as_ref()).len(), 65, "{backend:?}");
        assert!(
            keys_of(t.b.as_ref()).is_empty(),
            "{backend:?}: the neighbour"
        );
    }
}
