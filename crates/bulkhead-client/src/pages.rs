//! Following `page_token`s: every List call of the API pages the same way, so one loop serves
//! them all.

use std::future::Future;

use crate::error::Result;

/// Items of successive pages, until a page comes back without a next token or `limit` items
/// are in hand. `fetch(page_token, wanted)` returns one page's items and its next token.
pub(crate) async fn collect<T, F, Fut>(limit: usize, mut fetch: F) -> Result<Vec<T>>
where
    F: FnMut(String, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String)>>,
{
    let mut items = Vec::new();
    let mut page_token = String::new();
    while items.len() < limit {
        let (page, next) = fetch(page_token, limit - items.len()).await?;
        items.extend(page);
        if next.is_empty() {
            break;
        }
        page_token = next;
    }
    items.truncate(limit);
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn numbers(limit: usize) -> Vec<u32> {
        // Three pages of three: tokens "1", "2", then the end.
        collect(limit, |token, _| async move {
            let page: u32 = if token.is_empty() {
                0
            } else {
                token.parse().unwrap()
            };
            let items = (page * 3..page * 3 + 3).collect();
            let next = if page < 2 {
                (page + 1).to_string()
            } else {
                String::new()
            };
            Ok((items, next))
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn follows_tokens_to_the_end_or_the_limit() {
        assert_eq!(numbers(usize::MAX).await, (0..9).collect::<Vec<_>>());
        assert_eq!(numbers(4).await, vec![0, 1, 2, 3]);
        assert!(numbers(0).await.is_empty());
    }
}
