//! A ChaCha20 RNG that records every draw, so a vector file can list exactly which
//! random bytes the library consumed (and the model can use them independently).

use core::convert::Infallible;

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng, TryCryptoRng, TryRng};

/// ChaCha20Rng (rand_chacha 0.10) from a fixed seed, recording each draw.
pub struct RecordingRng {
    inner: ChaCha20Rng,
    draws: Vec<Vec<u8>>,
}

impl RecordingRng {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        RecordingRng { inner: ChaCha20Rng::from_seed(seed), draws: Vec::new() }
    }

    /// The draws made since the last call.
    pub fn take(&mut self) -> Vec<Vec<u8>> {
        core::mem::take(&mut self.draws)
    }
}

impl TryRng for RecordingRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let v = self.inner.next_u32();
        self.draws.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let v = self.inner.next_u64();
        self.draws.push(v.to_le_bytes().to_vec());
        Ok(v)
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.inner.fill_bytes(dst);
        self.draws.push(dst.to_vec());
        Ok(())
    }
}

impl TryCryptoRng for RecordingRng {}

/// The first `n` bytes of the ChaCha20Rng stream for `seed` (the model's check that the
/// recorded draws are that stream, in order).
pub fn chacha_stream(seed: [u8; 32], n: usize) -> Vec<u8> {
    let mut rng = ChaCha20Rng::from_seed(seed);
    let mut out = vec![0u8; n];
    rng.fill_bytes(&mut out);
    out
}
