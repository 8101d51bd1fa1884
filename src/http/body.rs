//! Image bodies written in slices: actix-http copies a body into its write buffer before writing
//! it, so an 800 KB body served whole grows that buffer to 800 KB (reallocating on the way) and
//! drops it after every response. In slices of the write buffer's own size the buffer never
//! grows, and each slice is a view of the cached bytes (no copy until the write buffer's).

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::web::Bytes;

/// actix-http's default `h1_write_buffer_size`: the dispatcher stops asking for more of the
/// body once its buffer holds this much.
pub const SLICE: usize = 32 * 1024;

/// A cached body handed to actix in [`SLICE`]-sized views, with its full length announced.
pub struct Sliced {
    body: Bytes,
}

impl Sliced {
    pub fn new(body: Bytes) -> Self {
        Self { body }
    }
}

impl MessageBody for Sliced {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Sized(self.body.len() as u64)
    }

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if this.body.is_empty() {
            return Poll::Ready(None);
        }
        let n = this.body.len().min(SLICE);
        Poll::Ready(Some(Ok(this.body.split_to(n))))
    }

    /// A body of one slice or less goes whole, as a plain `Bytes` body would.
    fn try_into_bytes(self) -> Result<Bytes, Self> {
        if self.body.len() <= SLICE {
            Ok(self.body)
        } else {
            Err(self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn slices_add_up_to_the_body() {
        for len in [0, 1, SLICE - 1, SLICE, SLICE + 1, 807_000] {
            let body: Bytes = (0..len).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
            let sliced = Sliced::new(body.clone());
            assert_eq!(sliced.size(), BodySize::Sized(len as u64));
            let got = actix_web::body::to_bytes(sliced).await.unwrap();
            assert_eq!(got, body, "{len}");
        }
    }
}
