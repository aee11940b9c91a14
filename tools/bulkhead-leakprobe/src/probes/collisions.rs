//! Equal record ids in different tenants must stay different records. A store keyed by
//! collection and id alone would let the tenant planted last overwrite the others, so every
//! tenant must read back exactly the text and vector it wrote under each shared id.

use super::settle;
use crate::canary::{self, COLLECTION, RECORD_IDS, RECORDS};
use crate::fixture::Fixture;
use crate::report::{ProbeResult, Problems};

pub async fn run(f: &Fixture) -> ProbeResult {
    const NAME: &str = "id-collisions";
    let outcome = async {
        let mut problems = Problems::default();
        for t in &f.tenants {
            let records = f
                .with_key(t, &t.write)?
                .get(COLLECTION, &RECORD_IDS)
                .await?;
            for (i, id) in RECORD_IDS.iter().enumerate() {
                let Some(r) = records.iter().find(|r| r.id == *id) else {
                    problems.push(format!("{} lost its record {id:?}", t.id));
                    continue;
                };
                let expected = t.canary.text(id);
                if r.text.as_deref() != Some(expected.as_str()) {
                    problems.push(format!(
                        "{} record {id:?} reads {:?}, wrote {expected:?}",
                        t.id, r.text
                    ));
                } else if !same_vector(&r.vector, &canary::vector(i, t.index)) {
                    problems.push(format!("{} record {id:?} has another vector", t.id));
                }
            }
        }
        Ok(problems.verdict(
            NAME,
            format!(
                "{RECORDS} ids in each of {} tenants: every tenant reads its own text and vector",
                f.tenants.len()
            ),
        ))
    };
    settle(NAME, outcome.await)
}

/// Equal up to float noise a server may add when it stores a vector; far below the nudge
/// that tells the tenants' near-identical vectors apart.
fn same_vector(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}
