//! A tenant's size counts its own data, buffered writes included.

use super::{BACKENDS, TwoTenants, put};

#[test]
fn size_counts_the_tenants_own_data_before_any_flush() {
    for backend in BACKENDS {
        let t = TwoTenants::new(backend);
        // Incompressible, so RocksDB's compressed files are as big as the data.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let value: Vec<u8> = (0..4096)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        put(
            t.a.as_ref(),
            &[(b"k1", &value), (b"k2", &value), (b"k3", &value)],
        );
        assert!(t.a.size_bytes().unwrap() >= 3 * 4096, "{backend:?}");
        assert!(
            t.b.size_bytes().unwrap() < 4096,
            "{backend:?}: the other tenant's writes are not counted"
        );
        t.a.flush().unwrap();
        assert!(
            t.a.size_bytes().unwrap() >= 3 * 4096,
            "{backend:?}: after a flush"
        );
    }
}
