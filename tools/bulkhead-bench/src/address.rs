//! The running server a mode measures, as every such mode takes it on its command line.

use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct ServerAddress {
    #[arg(long, default_value = "http://127.0.0.1:7600")]
    pub endpoint: String,
    #[arg(long, env = "BULKHEAD_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: String,
}
