//! A group closed and opened again serves its tenants' data; a dropped tenant's storage fails
//! on every use and leaves the other's; a table the registry no longer lists is dropped when
//! its group opens.

use super::{BACKENDS, TENANT_A, TENANT_B, TwoTenants, bytes, keys_of, put};

#[test]
fn a_reopened_group_serves_its_tenants_data() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"a", b"1")]);
        put(t.b.as_ref(), &[(b"b", b"2")]);
        let t = t.reopen();
        assert_eq!(keys_of(t.a.as_ref()), bytes(&["a"]), "{backend:?}");
        assert_eq!(keys_of(t.b.as_ref()), bytes(&["b"]), "{backend:?}");
    }
}

#[test]
fn a_dropped_tenant_fails_on_every_use_and_leaves_the_other() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"k", b"a")]);
        put(t.b.as_ref(), &[(b"k", b"b")]);
        t.a.drop_all().unwrap();
        assert!(t.a.multi_get(&bytes(&["k"])).is_err(), "{backend:?}: read");
        let mut set = crate::storage::WriteSet::default();
        set.put(b"k".to_vec(), b"again".to_vec());
        assert!(t.a.write(set).is_err(), "{backend:?}: write");
        assert!(
            t.a.scan((Vec::new(), vec![0xff]), &mut |_, _| Ok(true))
                .is_err(),
            "{backend:?}: scan"
        );
        assert_eq!(
            t.b.multi_get(&bytes(&["k"])).unwrap(),
            [Some(b"b".to_vec())],
            "{backend:?}"
        );
    }
}

#[test]
fn a_table_the_registry_no_longer_lists_is_dropped_when_its_group_opens() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"k", b"a")]);
        put(t.b.as_ref(), &[(b"k", b"b")]);
        // Reopened as if the registry had forgotten tenant a (a delete cut short).
        let group = t.reopen_group(&[TENANT_B]);
        assert!(
            group.store(TENANT_A).is_err(),
            "{backend:?}: a's table is gone"
        );
        let b = group.store(TENANT_B).unwrap();
        assert_eq!(keys_of(b.as_ref()), bytes(&["k"]), "{backend:?}");
    }
}
