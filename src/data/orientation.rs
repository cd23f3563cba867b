//! Per-user orientation normalisation of the HAR recordings: each user's phone sits at its own
//! tilt on the waist, and sitting differs from standing by little more than the torso's tilt. The
//! mean accelerometer vector over all of a user's recordings (gravity, in the phone's frame,
//! averaged over the same protocol of activities) is rotated onto one common direction, the
//! gyroscope with it. It needs no labels, only the user's unlabeled data.

use std::collections::BTreeMap;

use super::Har;
use crate::{Error, Result};

type Vec3 = [f64; 3];

fn dot(a: Vec3, b: Vec3) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: Vec3, b: Vec3) -> Vec3 {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

fn unit(a: Vec3) -> Option<Vec3> {
    let n = dot(a, a).sqrt();
    (n.is_finite() && n > 1e-9).then(|| [a[0] / n, a[1] / n, a[2] / n])
}

/// The rotation (row-major 3×3) taking unit vector `from` onto unit vector `to` (Rodrigues);
/// `None` for opposite vectors, where the axis is not defined.
pub fn rotation_between(from: Vec3, to: Vec3) -> Option<[Vec3; 3]> {
    let (v, c) = (cross(from, to), dot(from, to));
    if c <= -1.0 + 1e-9 {
        return None;
    }
    let k = 1.0 / (1.0 + c);
    // R = I + [v]x + [v]x² / (1 + c)
    Some([
        [
            1.0 - k * (v[1] * v[1] + v[2] * v[2]),
            k * v[0] * v[1] - v[2],
            k * v[0] * v[2] + v[1],
        ],
        [
            k * v[0] * v[1] + v[2],
            1.0 - k * (v[0] * v[0] + v[2] * v[2]),
            k * v[1] * v[2] - v[0],
        ],
        [
            k * v[0] * v[2] - v[1],
            k * v[1] * v[2] + v[0],
            1.0 - k * (v[0] * v[0] + v[1] * v[1]),
        ],
    ])
}

impl Har {
    /// The accelerometer and gyroscope channel triples (`acc_x..z`, `gyro_x..z`), or an `Err`.
    fn motion_channels(&self) -> Result<[usize; 6]> {
        let at = |n: &str| {
            self.channel_names
                .iter()
                .position(|c| c == n)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "orientation: no channel {n:?} among {:?}",
                        self.channel_names
                    ))
                })
        };
        Ok([
            at("acc_x")?,
            at("acc_y")?,
            at("acc_z")?,
            at("gyro_x")?,
            at("gyro_y")?,
            at("gyro_z")?,
        ])
    }

    /// Each user's gravity direction: the unit mean accelerometer vector over all their samples.
    pub fn user_gravity(&self) -> Result<BTreeMap<u16, [f64; 3]>> {
        let ch = self.motion_channels()?;
        let mut sums: BTreeMap<u16, Vec3> = BTreeMap::new();
        for r in &self.recordings {
            let s = sums.entry(r.user).or_insert([0.0; 3]);
            for (k, &c) in ch[..3].iter().enumerate() {
                s[k] += r.channel(c).iter().map(|&v| v as f64).sum::<f64>();
            }
        }
        sums.into_iter()
            .map(|(u, s)| {
                let g = unit(s).ok_or_else(|| {
                    Error::Invalid(format!("orientation: user {u} has no gravity direction"))
                })?;
                Ok((u, g))
            })
            .collect()
    }

    /// The mean of the users' gravity directions (each user counted once), normalised.
    pub fn mean_gravity(&self) -> Result<[f64; 3]> {
        let mut s = [0.0; 3];
        for g in self.user_gravity()?.values() {
            (0..3).for_each(|k| s[k] += g[k]);
        }
        unit(s).ok_or_else(|| Error::Invalid("orientation: no gravity direction".into()))
    }

    /// Rotates every user's accelerometer and gyroscope samples so that their gravity direction
    /// (`user_gravity`) becomes `target` (e.g. the training users' `mean_gravity`).
    pub fn align_gravity(&mut self, target: [f64; 3]) -> Result<()> {
        let ch = self.motion_channels()?;
        let target = unit(target).ok_or_else(|| {
            Error::Invalid(format!("orientation: target {target:?} is not a direction"))
        })?;
        let mut rotations = BTreeMap::new();
        for (u, g) in self.user_gravity()? {
            let r = rotation_between(g, target).ok_or_else(|| {
                Error::Invalid(format!(
                    "orientation: user {u}'s gravity is opposite the target"
                ))
            })?;
            rotations.insert(u, r);
        }
        for rec in &mut self.recordings {
            let r = rotations[&rec.user];
            let n = rec.len();
            for triple in [&ch[..3], &ch[3..]] {
                for i in 0..n {
                    let v = [0, 1, 2].map(|k| rec.signals[triple[k] * n + i] as f64);
                    for (k, row) in r.iter().enumerate() {
                        rec.signals[triple[k] * n + i] = dot(*row, v) as f32;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_takes_from_onto_to_and_keeps_lengths() {
        let from = unit([0.3, -0.8, 0.5]).unwrap();
        let to = unit([0.1, 0.2, -0.97]).unwrap();
        let r = rotation_between(from, to).unwrap();
        let got = r.map(|row| dot(row, from));
        (0..3).for_each(|k| assert!((got[k] - to[k]).abs() < 1e-12, "{got:?} vs {to:?}"));
        let w = [1.5, -2.0, 0.25];
        let rw = r.map(|row| dot(row, w));
        assert!(
            (dot(rw, rw) - dot(w, w)).abs() < 1e-12,
            "a rotation keeps lengths"
        );
        assert!(rotation_between(from, from.map(|v| -v)).is_none());
    }

    #[test]
    fn aligned_users_share_the_target_gravity() {
        let mut har = Har::embedded().unwrap();
        har.recordings.retain(|r| r.user <= 3);
        let target = har.mean_gravity().unwrap();
        har.align_gravity(target).unwrap();
        for (u, g) in har.user_gravity().unwrap() {
            let d = dot(g, target);
            assert!(d > 1.0 - 1e-9, "user {u}: {g:?} vs {target:?}");
        }
    }
}
