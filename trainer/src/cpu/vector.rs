//! Elementwise loops compiled three times: for the baseline x86-64 target, for AVX2 + FMA and
//! for AVX-512, picked at run time. The workspace builds for the baseline (SSE2), where these
//! loops run four lanes wide at best and `exp` is a scalar libm call, which the profile showed
//! at 7% of a step.

/// Defines `pub fn $name(...)` that runs its body with AVX-512 or else AVX2 and FMA enabled
/// when the CPU has them, so the compiler vectorises it sixteen or eight lanes wide.
macro_rules! vectorized {
	($(#[$meta:meta])* pub fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
		$(#[$meta])*
		pub fn $name($($arg: $ty),*) $(-> $ret)? {
			#[inline(always)]
			fn generic($($arg: $ty),*) $(-> $ret)? $body
			#[cfg(target_arch = "x86_64")]
			{
				#[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
				unsafe fn avx512($($arg: $ty),*) $(-> $ret)? {
					generic($($arg),*)
				}
				if std::arch::is_x86_feature_detected!("avx512f") && std::arch::is_x86_feature_detected!("avx512vl") {
					// SAFETY: the CPU has the features `avx512` was compiled for.
					return unsafe { avx512($($arg),*) };
				}
				#[target_feature(enable = "avx2,fma")]
				unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
					generic($($arg),*)
				}
				if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
					// SAFETY: the CPU has the features `avx2` was compiled for.
					return unsafe { avx2($($arg),*) };
				}
			}
			generic($($arg),*)
		}
	};
}

/// `eˣ` within 2 ulp for `x` in the float range, written so that it vectorises: `x = n·ln 2 +
/// r` with `|r| ≤ ln 2 / 2`, `eʳ` by its Taylor polynomial to degree 7 (error below 3·10⁻⁹), and
/// `2ⁿ` built in the exponent bits. Below −87 it is 0 (so masked scores, −∞, give exactly 0).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
	const LOG2_E: f32 = std::f32::consts::LOG2_E;
	const LN2_HI: f32 = 0.693_145_75;
	const LN2_LO: f32 = 1.428_606_8e-6;
	// Adding and subtracting 1.5·2²³ rounds to the nearest integer in float arithmetic.
	const ROUND: f32 = 12_582_912.0;
	let clamped = x.clamp(-87.0, 88.0);
	let rounded = clamped * LOG2_E + ROUND;
	let n = rounded - ROUND;
	let r = clamped - n * LN2_HI - n * LN2_LO;
	let p = 1.0
		+ r * (1.0
			+ r * (0.5
				+ r * (1.0 / 6.0
					+ r * (1.0 / 24.0
						+ r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
	// `n` sits in the low mantissa bits of `rounded`: integer arithmetic on the bits gives
	// `2ⁿ` without a float-to-int conversion, which Rust saturates and so cannot vectorise.
	let scale =
		f32::from_bits(rounded.to_bits().wrapping_sub(ROUND.to_bits()).wrapping_add(127) << 23);
	if x < -87.0 {
		0.0
	} else {
		p * scale
	}
}

/// `1 / (1 + e⁻ˣ)`.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
	1.0 / (1.0 + exp(-x))
}

vectorized! {
	/// `values[i] = e^(values[i] − shift)`; returns their sum.
	pub fn exp_shifted(values: &mut [f32], shift: f32) -> f32 {
		for v in values.iter_mut() {
			*v = exp(*v - shift);
		}
		lane_sum(values, values, |v, _| v)
	}
}

vectorized! {
	/// `out = silu(gate) ⊙ up`.
	pub fn silu_gate(out: &mut [f32], gate: &[f32], up: &[f32]) {
		for ((out, &g), &u) in out.iter_mut().zip(gate).zip(up) {
			*out = g * sigmoid(g) * u;
		}
	}
}

vectorized! {
	/// The gradients of [`silu_gate`] for the incoming gradient `grad`.
	pub fn silu_gate_backward(d_gate: &mut [f32], d_up: &mut [f32], gate: &[f32], up: &[f32], grad: &[f32]) {
		let n = d_gate.len().min(d_up.len()).min(gate.len()).min(up.len()).min(grad.len());
		for i in 0..n {
			let s = sigmoid(gate[i]);
			d_gate[i] = grad[i] * up[i] * s * (1.0 + gate[i] * (1.0 - s));
			d_up[i] = grad[i] * gate[i] * s;
		}
	}
}

/// `Σ f(a[i], b[i])` in eight running sums, so that the compiler can use vector lanes (one
/// sequential float sum fixes the order and keeps it scalar).
#[inline(always)]
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
	let mut lanes = [0f32; 8];
	let (a_chunks, b_chunks) = (a.chunks_exact(8), b.chunks_exact(8));
	let tail: f32 =
		a_chunks.remainder().iter().zip(b_chunks.remainder()).map(|(&a, &b)| f(a, b)).sum();
	for (a, b) in a_chunks.zip(b_chunks) {
		for ((lane, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
			*lane += f(a, b);
		}
	}
	lanes.iter().sum::<f32>() + tail
}

vectorized! {
	/// The largest `|v|` in `values`, 0 for none. (A fold with `f32::max`, which must ignore
	/// NaNs, stays scalar.)
	pub fn largest_magnitude(values: &[f32]) -> f32 {
		let mut lanes = [0f32; 16];
		let chunks = values.chunks_exact(16);
		let tail = chunks.remainder().iter().fold(0f32, |m, v| m.max(v.abs()));
		for chunk in chunks {
			for (lane, v) in lanes.iter_mut().zip(chunk) {
				let v = v.abs();
				*lane = if v > *lane { v } else { *lane };
			}
		}
		lanes.iter().fold(tail, |m, &v| m.max(v))
	}
}

vectorized! {
	/// `out[i] = even[i] | odd[i] << 16`: two 16-bit values per word, the first in its low half.
	pub fn pair_halves(out: &mut [u32], even: &[u16], odd: &[u16]) {
		for ((word, &e), &o) in out.iter_mut().zip(even).zip(odd) {
			*word = e as u32 | (o as u32) << 16;
		}
	}
}

vectorized! {
	/// `a · b`.
	pub fn dot(a: &[f32], b: &[f32]) -> f32 {
		lane_sum(a, b, |a, b| a * b)
	}
}

vectorized! {
	/// `y += t · b`.
	pub fn add_scaled(y: &mut [f32], t: f32, b: &[f32]) {
		y.iter_mut().zip(b).for_each(|(y, b)| *y += t * b);
	}
}

/// `(μ, 1/√(var + ε))` of a row; `μ = 0` when not `centered` (RMSNorm).
#[inline(always)]
fn norm_statistics(x: &[f32], centered: bool, eps: f32) -> (f32, f32) {
	let n = x.len() as f32;
	let mean = if centered { lane_sum(x, x, |v, _| v) / n } else { 0.0 };
	let var = lane_sum(x, x, |v, _| (v - mean) * (v - mean)) / n;
	(mean, 1.0 / (var + eps).sqrt())
}

vectorized! {
	/// One row of LayerNorm (`centered`) or RMSNorm: `y = (x − μ) · r · w + b`.
	pub fn norm_row(y: &mut [f32], x: &[f32], weight: &[f32], bias: Option<&[f32]>, centered: bool, eps: f32) {
		let (mean, r) = norm_statistics(x, centered, eps);
		match bias {
			Some(bias) => {
				for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(weight).zip(bias) {
					*y = (x - mean) * r * w + b;
				}
			},
			None => {
				for ((y, &x), &w) in y.iter_mut().zip(x).zip(weight) {
					*y = (x - mean) * r * w;
				}
			},
		}
	}
}

vectorized! {
	/// The input gradient of [`norm_row`] for the incoming gradient `g`:
	/// `r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))` with `ĝ = g ⊙ w`, without `mean(ĝ)` for RMSNorm.
	pub fn norm_row_backward(dx: &mut [f32], x: &[f32], g: &[f32], weight: &[f32], centered: bool, eps: f32) {
		let (mean, r) = norm_statistics(x, centered, eps);
		let n = x.len() as f32;
		// ĝ is formed once, in dx, and the two sums read it from there.
		for ((dx, &g), &w) in dx.iter_mut().zip(g).zip(weight) {
			*dx = g * w;
		}
		let mean_g = if centered { lane_sum(dx, dx, |v, _| v) / n } else { 0.0 };
		let mean_gx = lane_sum(dx, x, |gw, x| gw * (x - mean) * r) / n;
		for (dx, &x) in dx.iter_mut().zip(x) {
			*dx = r * (*dx - mean_g - (x - mean) * r * mean_gx);
		}
	}
}

/// `√(2/π)` and the cubic coefficient of GELU's tanh approximation.
const GELU_SCALE: f32 = 0.797_884_6;
const GELU_CUBIC: f32 = 0.044_715;

/// `tanh(u) = 1 − 2 / (1 + e²ᵘ)`, exact to float precision at both saturated ends.
#[inline(always)]
fn tanh(u: f32) -> f32 {
	1.0 - 2.0 / (1.0 + exp(2.0 * u))
}

vectorized! {
	/// `out = x · (1 + tanh(√(2/π) · (x + 0.044715 x³))) / 2`, GPT-2's `gelu_new` and BLOOM's GELU.
	pub fn gelu_tanh(out: &mut [f32], x: &[f32]) {
		for (out, &x) in out.iter_mut().zip(x) {
			*out = 0.5 * x * (1.0 + tanh(GELU_SCALE * x * (1.0 + GELU_CUBIC * x * x)));
		}
	}
}

vectorized! {
	/// The gradient of [`gelu_tanh`] for the incoming gradient `grad`.
	pub fn gelu_tanh_backward(dx: &mut [f32], x: &[f32], grad: &[f32]) {
		for ((dx, &x), &g) in dx.iter_mut().zip(x).zip(grad) {
			let t = tanh(GELU_SCALE * x * (1.0 + GELU_CUBIC * x * x));
			let du = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x * x);
			*dx = g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
		}
	}
}

#[cfg(test)]
mod tests {
	#[test]
	fn exp_is_within_two_ulp_of_libm_and_zero_for_minus_infinity() {
		let mut worst = 0f32;
		let mut x = -87.0f32;
		while x < 88.0 {
			let (got, want) = (super::exp(x), x.exp());
			worst = worst.max(((got - want) / want).abs());
			x += 0.001_37;
		}
		assert!(worst < 2.5e-7, "relative error {worst}");
		assert_eq!(super::exp(f32::NEG_INFINITY), 0.0);
		let mut row = vec![0.0, 1.0, f32::NEG_INFINITY];
		let sum = super::exp_shifted(&mut row, 1.0);
		assert!((sum - (1.0 + (-1f32).exp())).abs() < 1e-6 && row[2] == 0.0, "{row:?}");
	}
}
