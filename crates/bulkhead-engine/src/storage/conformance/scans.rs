//! A scan visits its range in key order, stops when told to, and passes errors on.

use super::{BACKENDS, TwoTenants, bytes, put};
use crate::error::EngineError;

#[test]
fn a_scan_visits_its_range_in_key_order() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(
            t.a.as_ref(),
            &[
                (b"b", b"2"),
                (b"a", b"1"),
                (b"c", b"3"),
                (b"ca", b"4"),
                (b"d", b"5"),
            ],
        );
        let mut seen = Vec::new();
        t.a.scan((b"b".to_vec(), b"d".to_vec()), &mut |k, v| {
            seen.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })
        .unwrap();
        let expected: Vec<(Vec<u8>, Vec<u8>)> = [("b", "2"), ("c", "3"), ("ca", "4")]
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(seen, expected, "{backend:?}");
    }
}

#[test]
fn a_scan_stops_when_its_visitor_says_so_or_fails() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        let keys: Vec<String> = (0..1000).map(|i| format!("k{i:04}")).collect();
        let pairs: Vec<(&[u8], &[u8])> = keys.iter().map(|k| (k.as_bytes(), &b""[..])).collect();
        put(t.a.as_ref(), &pairs);
        let mut seen = Vec::new();
        t.a.scan((Vec::new(), vec![0xff]), &mut |k, _| {
            seen.push(k.to_vec());
            Ok(seen.len() < 600)
        })
        .unwrap();
        assert_eq!(
            seen.len(),
            600,
            "{backend:?}: stops after the visit that said no"
        );
        assert_eq!(seen.last(), Some(&b"k0599".to_vec()), "{backend:?}");
        let failed = t.a.scan((Vec::new(), vec![0xff]), &mut |_, _| {
            Err(EngineError::Corrupt("visitor".into()))
        });
        assert!(
            matches!(failed, Err(EngineError::Corrupt(_))),
            "{backend:?}: {failed:?}"
        );
    }
}

/// A visitor may write to the store it scans (the sweep and the audit pruning read, then
/// write): the scan neither deadlocks nor fails.
#[test]
fn a_visitor_may_write_to_the_store_it_scans() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        put(t.a.as_ref(), &[(b"a", b""), (b"b", b"")]);
        let store = t.a.as_ref();
        store
            .scan((b"a".to_vec(), b"c".to_vec()), &mut |k, _| {
                put(store, &[(&[b"x", k].concat(), b"")]);
                Ok(true)
            })
            .unwrap();
        assert_eq!(
            store.multi_get(&bytes(&["xa", "xb"])).unwrap(),
            [Some(Vec::new()), Some(Vec::new())],
            "{backend:?}"
        );
    }
}
