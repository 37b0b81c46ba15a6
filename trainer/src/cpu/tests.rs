//! Each fused kernel against candle's composed ops: values, and gradients through `backward`.

use super::{
	attention::CausalAttention,
	heads::{RopeTables, SplitHeads},
	linear::{Branch, FusedLinear},
	loss::LinearCrossEntropy,
	mlp::Activation,
	norm::Norm,
};
use crate::frozen::FrozenWeight;
use crate::rng::Rng;
use candle_core::{Device, Tensor, Var, D};
use candle_nn::{ops, rotary_emb};
use std::sync::Arc;

fn random(rng: &mut Rng, shape: &[usize]) -> Var {
	let n = shape.iter().product();
	Var::from_vec(rng.uniform_vec(n, 1.0), shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f32> {
	t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(what: &str, got: &Tensor, want: &Tensor, tolerance: f32) {
	assert_eq!(got.dims(), want.dims(), "{what}: shapes");
	let (got, want) = (values(got), values(want));
	let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
	assert!(scale > 0.0, "{what}: the reference is all zero, so the comparison proves nothing");
	let diff = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
	assert!(diff <= tolerance * scale.max(1.0), "{what}: differs by {diff} (scale {scale})");
}

/// Gradients of `Σ loss_weights ⊙ f(inputs)` for every input, as `backward` gives them.
fn gradients(out: &Tensor, loss_weights: &Tensor, inputs: &[&Var]) -> Vec<Tensor> {
	let store = (out * loss_weights).unwrap().sum_all().unwrap().backward().unwrap();
	inputs
		.iter()
		.map(|v| store.get(v.as_tensor()).expect("an input got no gradient").clone())
		.collect()
}

fn compare(what: &str, fused: &Tensor, composed: &Tensor, inputs: &[&Var], rng: &mut Rng) {
	assert_close(&format!("{what} forward"), fused, composed, 1e-5);
	let weights = random(rng, fused.dims()).as_tensor().clone();
	let (a, b) = (gradients(fused, &weights, inputs), gradients(composed, &weights, inputs));
	for (i, (a, b)) in a.iter().zip(&b).enumerate() {
		assert_close(&format!("{what} gradient of input {i}"), a, b, 1e-4);
	}
}

#[test]
fn norms_match_the_composed_ops() {
	let mut rng = Rng::new(1);
	let x = random(&mut rng, &[3, 5, 24]);
	let (w, bias) = (random(&mut rng, &[24]), random(&mut rng, &[24]));
	let rms = Norm { weight: values(&w), bias: None, centered: false, eps: 1e-5 };
	let fused = x.as_tensor().apply_op1(rms).unwrap();
	compare("rms", &fused, &ops::rms_norm_slow(&x, &w, 1e-5).unwrap(), &[&x], &mut rng);
	let layer = Norm { weight: values(&w), bias: Some(values(&bias)), centered: true, eps: 1e-5 };
	let fused = x.as_tensor().apply_op1(layer).unwrap();
	compare("layer", &fused, &ops::layer_norm_slow(&x, &w, &bias, 1e-5).unwrap(), &[&x], &mut rng);
}

/// An MLP's output projection with the activation inside, with and without an adapter, and
/// adding onto a residual, against the activation, product and sum from candle's ops. GELU's inputs reach ±12, so both saturated
/// ends of tanh are crossed.
#[test]
fn activated_linear_matches_the_composed_ops() {
	let (rows, width, out, rank, scale) = (4 * 7, 33, 5, 3, 0.5);
	for (activation, range) in [(Activation::SiluGate, 1.0), (Activation::GeluTanh, 12.0)] {
		let mut rng = Rng::new(2);
		let input_width = activation.input_width(width);
		let x = Var::from_vec(
			rng.uniform_vec(rows * input_width, range),
			(4, 7, input_width),
			&Device::Cpu,
		)
		.unwrap();
		let weight = random(&mut rng, &[out, width]).as_tensor().clone();
		let (a, b) = (random(&mut rng, &[rank, width]), random(&mut rng, &[out, rank]));
		let activated = match activation {
			Activation::SiluGate => (x.narrow(2, 0, width).unwrap().silu().unwrap()
				* x.narrow(2, width, width).unwrap())
			.unwrap(),
			Activation::GeluTanh => x.gelu().unwrap(),
		};
		let frozen = activated.broadcast_matmul(&weight.t().unwrap()).unwrap();
		let op = || {
			FusedLinear::new(FrozenWeight::Dense(weight.clone()), None, scale, Vec::new())
				.after(activation)
		};
		compare(
			&format!("{activation:?}"),
			&x.as_tensor().apply_op1(op()).unwrap(),
			&frozen,
			&[&x],
			&mut rng,
		);
		let residual = random(&mut rng, &[4, 7, out]);
		let onto = x.as_tensor().apply_op2(residual.as_tensor(), op()).unwrap();
		compare(
			&format!("{activation:?} onto a residual"),
			&onto,
			&(residual.as_tensor() + &frozen).unwrap(),
			&[&x, &residual],
			&mut rng,
		);

		let branch = Branch {
			first_column: 0,
			columns: out,
			dropout_mask: None,
			ids: (a.as_tensor().id(), b.as_tensor().id()),
			source_rows: None,
		};
		let op = FusedLinear::new(FrozenWeight::Dense(weight.clone()), None, scale, vec![branch])
			.after(activation);
		let fused = x.as_tensor().apply_op3(a.as_tensor(), b.as_tensor(), op).unwrap();
		let update = activated
			.broadcast_matmul(&a.t().unwrap())
			.unwrap()
			.broadcast_matmul(&b.t().unwrap())
			.unwrap();
		let composed = (frozen + (update * scale as f64).unwrap()).unwrap();
		compare(
			&format!("{activation:?} with an adapter"),
			&fused,
			&composed,
			&[&x, &a, &b],
			&mut rng,
		);
	}
}

/// Both rotary layouts, a partial rotation (ChatGLM turns half of each head) and an offset.
#[test]
fn split_heads_with_rope_matches_the_composed_ops() {
	let (batch, seq, heads, hd, offset) = (2, 5, 3, 8, 2);
	for (interleaved, rotary_dim) in [(false, 8), (true, 8), (true, 4)] {
		let mut rng = Rng::new(3);
		let x = random(&mut rng, &[batch, seq, heads * hd]);
		let positions = offset + seq;
		let angles: Vec<f32> = (0..positions * rotary_dim / 2).map(|i| i as f32 * 0.37).collect();
		let cos: Vec<f32> = angles.iter().map(|a| a.cos()).collect();
		let sin: Vec<f32> = angles.iter().map(|a| a.sin()).collect();
		let table = |v: &Vec<f32>| {
			Tensor::from_vec(v.clone(), (positions, rotary_dim / 2), &Device::Cpu)
				.unwrap()
				.narrow(0, offset, seq)
				.unwrap()
		};
		let rope = RopeTables {
			cos: Arc::new(cos.clone()),
			sin: Arc::new(sin.clone()),
			rotary_dim,
			interleaved,
		};
		let fused =
			x.as_tensor().apply_op1(SplitHeads::single(heads, hd, Some(rope), offset)).unwrap();
		let split = x
			.reshape((batch, seq, heads, hd))
			.unwrap()
			.transpose(1, 2)
			.unwrap()
			.contiguous()
			.unwrap();
		let turned = split.narrow(3, 0, rotary_dim).unwrap().contiguous().unwrap();
		let turned = if interleaved {
			rotary_emb::rope_i_slow(&turned, &table(&cos), &table(&sin)).unwrap()
		} else {
			rotary_emb::rope_slow(&turned, &table(&cos), &table(&sin)).unwrap()
		};
		let composed = if rotary_dim == hd {
			turned
		} else {
			Tensor::cat(&[&turned, &split.narrow(3, rotary_dim, hd - rotary_dim).unwrap()], 3)
				.unwrap()
		};
		compare(
			&format!("rope interleaved={interleaved} dim={rotary_dim}"),
			&fused,
			&composed,
			&[&x],
			&mut rng,
		);
	}
}

/// Grouped-query heads, a cache offset (more keys than queries), a window and ALiBi; at 70
/// queries, several query blocks, the last one partial, and a window that leaves keys behind.
#[test]
fn attention_matches_the_composed_ops() {
	let (batch, heads, kv_heads, hd) = (2, 4, 2, 8);
	let cases = [
		(6, 9, None, false),
		(6, 9, Some(4), false),
		(6, 9, None, true),
		(70, 75, None, false),
		(70, 75, Some(40), true),
	];
	for (seq, total, window, alibi) in cases {
		let mut rng = Rng::new(4);
		let q = random(&mut rng, &[batch, heads, seq, hd]);
		let k = random(&mut rng, &[batch, kv_heads, total, hd]);
		let v = random(&mut rng, &[batch, kv_heads, total, hd]);
		let scale = 1.0 / (hd as f32).sqrt();
		let slopes: Vec<f32> = (0..heads).map(|h| 0.5f32.powi(h as i32 + 1)).collect();
		let op = CausalAttention::new(scale, window, alibi.then(|| Arc::new(slopes.clone())));
		let fused = q.as_tensor().apply_op3(k.as_tensor(), v.as_tensor(), op).unwrap();

		let repeat = |t: &Tensor| {
			t.unsqueeze(2)
				.unwrap()
				.broadcast_as((batch, kv_heads, heads / kv_heads, total, hd))
				.unwrap()
				.reshape((batch, heads, total, hd))
				.unwrap()
		};
		let mut scores = (q.matmul(&repeat(&k).t().unwrap().contiguous().unwrap()).unwrap()
			* scale as f64)
			.unwrap();
		let bias: Vec<f32> = (0..heads)
			.flat_map(|h| {
				let slopes = slopes.clone();
				(0..seq).flat_map(move |i| {
					let query = total - seq + i;
					let slope = slopes[h];
					(0..total).map(move |key| {
						if key > query || query - key >= window.unwrap_or(usize::MAX) {
							f32::NEG_INFINITY
						} else if alibi {
							slope * key as f32
						} else {
							0.0
						}
					})
				})
			})
			.collect();
		scores = scores
			.broadcast_add(&Tensor::from_vec(bias, (1, heads, seq, total), &Device::Cpu).unwrap())
			.unwrap();
		let probs = ops::softmax(&scores, D::Minus1).unwrap();
		let composed = probs
			.matmul(&repeat(&v))
			.unwrap()
			.transpose(1, 2)
			.unwrap()
			.reshape((batch, seq, heads * hd))
			.unwrap();
		compare(
			&format!("attention seq={seq} total={total} window={window:?} alibi={alibi}"),
			&fused,
			&composed,
			&[&q, &k, &v],
			&mut rng,
		);
	}
}

/// Chunks smaller than the positions (the vocabulary is large against `MAX_CHUNK_LOGITS` only
/// in real models, so the chunk loop is forced through by many positions), masked positions;
/// the weight in f32 and in each 16-bit format this CPU has a kernel for (f16 from panels
/// packed once for every chunk).
#[test]
fn linear_cross_entropy_matches_the_composed_ops() {
	use super::gemm::Half;
	use candle_core::DType;
	let (positions, width, vocab) = (3000, 16, 3000);
	let mut rng = Rng::new(5);
	let hidden = random(&mut rng, &[positions, width]);
	let weight = random(&mut rng, &[vocab, width]).as_tensor().clone();
	let targets: Vec<u32> = (0..positions).map(|_| rng.below(vocab) as u32).collect();
	let mask: Vec<f32> = (0..positions).map(|i| if i % 3 == 0 { 0.0 } else { 1.0 }).collect();
	assert!(
		positions * vocab > super::loss::MAX_CHUNK_LOGITS,
		"the test must cross a chunk boundary"
	);
	// (dtype, tolerance): a 16-bit product also rounds the hidden states, to 11 bits in f16
	// and 8 in bf16; the reference multiplies the same rounded weight in f32.
	let formats = [(DType::F32, 1e-5, 1e-4), (DType::F16, 1e-5, 4e-3), (DType::BF16, 1e-4, 1e-2)];
	for (dtype, loss_tolerance, gradient_tolerance) in formats {
		let half = match dtype {
			DType::F16 => Some(Half::F16),
			DType::BF16 => Some(Half::Bf16),
			_ => None,
		};
		if half.is_some_and(|h| !h.supported()) {
			continue;
		}
		let stored = weight.to_dtype(dtype).unwrap();
		let rounded = stored.to_dtype(DType::F32).unwrap();
		// With a panel cache, as models run it: the f16 chunks share the weight's panels.
		let op = LinearCrossEntropy::new(stored, targets.clone(), mask.clone(), true)
			.with_panels(Arc::default());
		let fused = hidden.as_tensor().apply_op1(op).unwrap();

		let logits = hidden.matmul(&rounded.t().unwrap()).unwrap();
		let log_probs = ops::log_softmax(&logits, D::Minus1).unwrap();
		let target_ids = Tensor::from_vec(targets.clone(), (positions, 1), &Device::Cpu).unwrap();
		let picked = log_probs.gather(&target_ids, D::Minus1).unwrap().squeeze(D::Minus1).unwrap();
		let mask = Tensor::from_vec(mask.clone(), positions, &Device::Cpu).unwrap();
		let composed = (picked * mask).unwrap().sum_all().unwrap().neg().unwrap();
		assert_close(&format!("{dtype:?} loss"), &fused, &composed, loss_tolerance);
		let d_fused = fused.backward().unwrap().get(hidden.as_tensor()).unwrap().clone();
		let d_composed = composed.backward().unwrap().get(hidden.as_tensor()).unwrap().clone();
		assert_close(
			&format!("{dtype:?} loss gradient"),
			&d_fused,
			&d_composed,
			gradient_tolerance,
		);
	}
}

/// Inference reads a quantised weight straight from its codes (one layer and a stacked group,
/// int8 and NF4, with a residual): the same values as dequantising it for BLAS, and each row's
/// result does not depend on the other rows of the batch.
#[test]
fn quantised_weights_read_from_their_codes_match_the_dequantised_product() {
	use crate::quant::QuantKind;
	let mut rng = Rng::new(9);
	for kind in [QuantKind::Int8, QuantKind::Nf4] {
		let dense = |rng: &mut Rng, out: usize| {
			FrozenWeight::Dense(random(rng, &[out, 128]).as_tensor().clone())
		};
		let single = dense(&mut rng, 7).quantize(kind).unwrap();
		let stacked = FrozenWeight::Stacked(vec![
			dense(&mut rng, 5).quantize(kind).unwrap(),
			dense(&mut rng, 3).quantize(kind).unwrap(),
		]);
		for (name, weight) in [("single", single), ("stacked", stacked)] {
			let out = weight.shape().unwrap().0;
			let x = random(&mut rng, &[2, 3, 128]).as_tensor().clone();
			let residual = random(&mut rng, &[2, 3, out]).as_tensor().clone();
			let op = |read_codes| {
				FusedLinear::new(weight.clone(), None, 0.0, Vec::new()).reading_codes(read_codes)
			};
			let what = format!("{kind:?} {name}");
			// Int8 codes meet activations quantised the same way: the product is the
			// dequantised one of those activations.
			let seen = match kind {
				QuantKind::Int8 => {
					let rows: Vec<f32> = values(&x)
						.chunks_exact(128)
						.flat_map(|row| super::int8::QuantizedRow::new(row).values())
						.collect();
					Tensor::from_vec(rows, x.shape(), &Device::Cpu).unwrap()
				},
				QuantKind::Nf4 => x.clone(),
			};
			assert_close(
				&what,
				&x.apply_op1(op(true)).unwrap(),
				&seen.apply_op1(op(false)).unwrap(),
				1e-5,
			);
			let onto =
				|input: &Tensor, read_codes| input.apply_op2(&residual, op(read_codes)).unwrap();
			assert_close(
				&format!("{what} onto the residual"),
				&onto(&x, true),
				&onto(&seen, false),
				1e-5,
			);
			let alone =
				x.narrow(1, 1, 1).unwrap().contiguous().unwrap().apply_op1(op(true)).unwrap();
			let in_batch = x.apply_op1(op(true)).unwrap().narrow(1, 1, 1).unwrap();
			assert_eq!(values(&alone), values(&in_batch), "{what}: a row depends on its batch");
		}
	}
}
