//! The open-files budget. Every open group holds up to `max_open_files` table files plus a few
//! of its own (WAL, MANIFEST, info log, lock), so the number of groups open at once is what
//! keeps a node with tens of thousands of tenants inside its file-descriptor limit.

use rlimit::Resource;

use crate::config::EngineConfig;

/// Files a group instance holds besides its table files.
const FILES_PER_GROUP_BESIDES_TABLES: u64 = 8;

/// Table files assumed per group when `max_open_files` is unlimited (-1).
const ASSUMED_TABLES_PER_TENANT: u64 = 4;

/// Raises the process's open-files limit to its hard limit (logging the result) and returns the
/// most groups that may be open at once: the configured cap, lowered so that open groups use at
/// most three quarters of the limit; the rest is left for sockets and the registry.
pub(crate) fn open_group_cap(config: &EngineConfig) -> usize {
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::info!(limit, "open files limit raised");
            limit
        }
        Err(e) => {
            let (soft, _) = rlimit::getrlimit(Resource::NOFILE).unwrap_or((1024, 1024));
            tracing::warn!(error = %e, limit = soft, "could not raise the open files limit");
            soft
        }
    };
    let tables = match u64::try_from(config.max_open_files_per_group) {
        Ok(n) => n,
        Err(_) => config.tenants_per_group as u64 * ASSUMED_TABLES_PER_TENANT,
    };
    cap_for(limit, tables, config.max_open_groups)
}

fn cap_for(limit: u64, tables_per_group: u64, configured: usize) -> usize {
    let per_group = tables_per_group + FILES_PER_GROUP_BESIDES_TABLES;
    let fitting = usize::try_from(limit / 4 * 3 / per_group).unwrap_or(usize::MAX);
    let cap = configured.min(fitting).max(1);
    if cap < configured {
        tracing::info!(
            configured,
            cap,
            "most open tenant groups lowered to fit the open files limit"
        );
    }
    cap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_three_quarters_of_the_limit() {
        // 20,000 descriptors, 128 table files + 8 others per group: 15,000 / 136 = 110.
        assert_eq!(cap_for(20_000, 128, 512), 110);
        assert_eq!(cap_for(1_000_000, 128, 512), 512);
        assert_eq!(
            cap_for(64, 128, 512),
            1,
            "at least one group can always open"
        );
    }
}
