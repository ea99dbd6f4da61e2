//! Pagination and sorting parameters of list endpoints (Portus API conventions).

use portcullis_domain::{Error, Result};
use portcullis_storage::PageRequest;

/// Portus's API default page size.
pub const DEFAULT_PER_PAGE: i64 = 15;
/// Largest page a client may ask for.
pub const MAX_PER_PAGE: i64 = 1000;

#[derive(Debug, Clone)]
pub struct ListParams {
    /// 1-based.
    pub page: i64,
    pub per_page: i64,
    /// Disables paging.
    pub all: bool,
    pub sort_attr: Option<String>,
    /// `asc` sorts ascending, anything else descending; absent: ascending.
    pub sort_order: Option<String>,
}

impl Default for ListParams {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
            all: false,
            sort_attr: None,
            sort_order: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: i64,
    pub page: i64,
    pub per_page: i64,
    pub total_pages: i64,
}

impl ListParams {
    /// Translates to a storage request. `sortable` lists the attributes clients may sort
    /// by; anything else sorts by id (Portus). A page beyond any possible offset is a
    /// malformed request, never an overflow.
    pub fn to_page_request(&self, sortable: &[&'static str]) -> Result<PageRequest> {
        let order_by = self
            .sort_attr
            .as_deref()
            .and_then(|a| sortable.iter().find(|s| **s == a).copied())
            .unwrap_or("id");
        let descending = self.sort_order.as_deref().is_some_and(|o| o != "asc");
        let per_page = self.per_page();
        let offset = if self.all {
            0
        } else {
            (self.page.max(1) - 1)
                .checked_mul(per_page)
                .ok_or_else(|| Error::Malformed(format!("page {} is out of range", self.page)))?
        };
        Ok(PageRequest {
            offset,
            limit: (!self.all).then_some(per_page),
            order_by,
            descending,
        })
    }

    fn per_page(&self) -> i64 {
        self.per_page.clamp(1, MAX_PER_PAGE)
    }

    pub fn paged<T>(&self, items: Vec<T>, total: i64) -> Paged<T> {
        let per_page = if self.all {
            total.max(1)
        } else {
            self.per_page()
        };
        Paged {
            items,
            total,
            page: if self.all { 1 } else { self.page.max(1) },
            per_page,
            total_pages: ((total + per_page - 1) / per_page).max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_requests() {
        let p = ListParams {
            page: 3,
            per_page: 10,
            ..Default::default()
        };
        let r = p.to_page_request(&["username"]).unwrap();
        assert_eq!(
            (r.offset, r.limit, r.order_by, r.descending),
            (20, Some(10), "id", false)
        );
        let p = ListParams {
            sort_attr: Some("username".into()),
            sort_order: Some("desc".into()),
            ..Default::default()
        };
        let r = p.to_page_request(&["username"]).unwrap();
        assert_eq!(
            (r.offset, r.limit, r.order_by, r.descending),
            (0, Some(15), "username", true)
        );
        let p = ListParams {
            sort_attr: Some("password_hash".into()),
            ..Default::default()
        };
        assert_eq!(p.to_page_request(&["username"]).unwrap().order_by, "id");
        let p = ListParams {
            all: true,
            page: 4,
            ..Default::default()
        };
        let r = p.to_page_request(&[]).unwrap();
        assert_eq!((r.offset, r.limit), (0, None));
        let p = ListParams {
            page: 0,
            per_page: 0,
            ..Default::default()
        };
        assert_eq!(p.to_page_request(&[]).unwrap().offset, 0);
        // Huge pages are refused, not wrapped around.
        for page in [i64::MAX, i64::MAX / 2] {
            let p = ListParams {
                page,
                per_page: 1000,
                ..Default::default()
            };
            assert!(
                matches!(p.to_page_request(&[]), Err(Error::Malformed(_))),
                "{page}"
            );
        }
    }

    #[test]
    fn totals() {
        let p = ListParams {
            per_page: 10,
            ..Default::default()
        };
        let paged = p.paged(vec![1; 10], 25);
        assert_eq!((paged.page, paged.per_page, paged.total_pages), (1, 10, 3));
        assert_eq!(p.paged(Vec::<i32>::new(), 0).total_pages, 1);
        let all = ListParams {
            all: true,
            ..Default::default()
        }
        .paged(vec![1; 25], 25);
        assert_eq!((all.per_page, all.total_pages), (25, 1));
    }
}
