//! Following `page_token`s: every List call of the API pages the same way, so one loop serves
//! them all.

use std::future::Future;

use crate::error::Result;

/// Items of successive pages, until a page comes back without a next token or `limit` items
/// are in hand. `fetch(page_token, wanted)` returns one page's items and its next token.
pub(crate) async fn collect<T, F, Fut>(limit: usize, fetch: F) -> Result<Vec<T>>
where
    F: FnMut(String, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String)>>,
{
    Ok(collect_from(String::new(), limit, fetch).await?.0)
}

/// Like [`collect`], starting at `page_token` (empty: the first page), and also returning the
/// token that continues after the items returned: empty when there are no more. The token is
/// exact only if `fetch` returns at most `wanted` items, as servers asked for a page size do.
pub(crate) async fn collect_from<T, F, Fut>(
    mut page_token: String,
    limit: usize,
    mut fetch: F,
) -> Result<(Vec<T>, String)>
where
    F: FnMut(String, usize) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String)>>,
{
    let mut items = Vec::new();
    while items.len() < limit {
        let (page, next) = fetch(page_token, limit - items.len()).await?;
        items.extend(page);
        page_token = next;
        if page_token.is_empty() {
            break;
        }
    }
    items.truncate(limit);
    Ok((items, page_token))
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

    #[tokio::test]
    async fn resumes_from_a_token_and_returns_the_next_one() {
        // Pages of `wanted` numbers from 0 to 9; a token is the first number of its page.
        let fetch = |token: String, wanted: usize| async move {
            let from: usize = if token.is_empty() {
                0
            } else {
                token.parse().unwrap()
            };
            let to = (from + wanted.min(3)).min(10);
            let next = if to < 10 {
                to.to_string()
            } else {
                String::new()
            };
            Ok(((from..to).collect::<Vec<_>>(), next))
        };
        let (first, token) = collect_from(String::new(), 4, fetch).await.unwrap();
        assert_eq!((first, token.as_str()), (vec![0, 1, 2, 3], "4"));
        let (rest, end) = collect_from(token, 100, fetch).await.unwrap();
        assert_eq!((rest, end.as_str()), ((4..10).collect::<Vec<usize>>(), ""));
    }
}
