//! [`FixedSum`]: a sum of `f64`s that does not depend on the order or grouping of its terms.
//!
//! Floating-point addition is not associative, so a sum taken in batches of 4,096 rows and the
//! same sum taken over the pieces of a file cut at other rows ([`crate::chunks`]) differ in
//! their last bits, and a figure rounded from them can differ in its last shown digit. Each
//! term is rounded once to a multiple of 2⁻⁴⁸ (about 3.6 × 10⁻¹⁵) and added as an integer, which
//! is exact and associative: the total is a function of the set of terms alone, so a file
//! scored in one pass and in pieces gives the same figures, bit for bit.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Fraction bits of a term: terms are rounded to multiples of 2⁻⁴⁸.
const FRACTION_BITS: i32 = 48;

/// A sum of finite `f64` terms in 80.48 fixed point (`i128`): exact whatever the order of
/// additions and merges, for totals below 2⁷⁹ ≈ 6 × 10²³ in magnitude (terms beyond saturate).
/// Serialised as its integer's decimal text (JSON numbers lose an `i128`'s digits).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FixedSum(i128);

impl FixedSum {
    /// Adds `x`, rounded to the nearest multiple of 2⁻⁴⁸; a NaN or infinity is not added.
    pub fn add(&mut self, x: f64) {
        if x.is_finite() {
            // Scaling by a power of two is exact; `as` saturates instead of overflowing.
            let scaled = (x * 2f64.powi(FRACTION_BITS)).round() as i128;
            self.0 = self.0.saturating_add(scaled);
        }
    }

    /// Adds another sum (of the next rows).
    pub fn merge(&mut self, other: FixedSum) {
        self.0 = self.0.saturating_add(other.0);
    }

    /// The total as the nearest `f64`.
    pub fn value(self) -> f64 {
        self.0 as f64 / 2f64.powi(FRACTION_BITS)
    }
}

impl Serialize for FixedSum {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for FixedSum {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse()
            .map(FixedSum)
            .map_err(|e| serde::de::Error::custom(format!("a fixed-point sum {text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_grouping_of_the_terms_gives_the_same_total() {
        let terms: Vec<f64> = (0..10_000)
            .map(|i| ((i * 7919) % 1000) as f64 / 997.0 + 1e-9 * i as f64)
            .collect();
        let mut whole = FixedSum::default();
        terms.iter().for_each(|&t| whole.add(t));
        for cut in [1, 17, 4096, 9999] {
            let (mut a, mut b) = (FixedSum::default(), FixedSum::default());
            terms[..cut].iter().for_each(|&t| a.add(t));
            terms[cut..].iter().for_each(|&t| b.add(t));
            a.merge(b);
            assert_eq!(a, whole);
        }
        let plain: f64 = terms.iter().sum();
        assert!(
            (whole.value() - plain).abs() < 1e-9,
            "{} {plain}",
            whole.value()
        );
        let back: FixedSum = serde_json::from_str(&serde_json::to_string(&whole).unwrap()).unwrap();
        assert_eq!(back, whole);
        let mut odd = FixedSum::default();
        odd.add(f64::NAN);
        odd.add(f64::INFINITY);
        assert_eq!(odd.value(), 0.0);
    }
}
