//! A parallel loop whose helper threads wait by spinning, for decoding.
//!
//! Decoding a token runs 121 products on SmolLM2, each a fraction of a millisecond, with serial
//! work between them (attention, norms). rayon's idle workers sleep after a few rounds, so each
//! product paid for a futex wake-up on one side and a sleep on the other: in the serving
//! benchmark's profile, a sixth of the samples were the kernel switching threads. Here the
//! helpers spin for [`SPIN`] after each loop before they park, so a loop that follows soon
//! after the last starts on every core at once.
//!
//! One loop runs at a time. A call made while another runs (from another thread, or from inside
//! a task) runs its tasks on the calling thread alone rather than wait.

use std::{
	panic::{catch_unwind, resume_unwind, AssertUnwindSafe},
	sync::{
		atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering::*},
		Condvar, Mutex, OnceLock,
	},
	time::{Duration, Instant},
};

/// How long an idle helper spins before it parks.
const SPIN: Duration = Duration::from_millis(1);

/// `state`: the loop's number in the high half; in the low half, whether it is closed to
/// helpers and how many have joined it.
const CLOSED: u64 = 1 << 31;
const JOINED: u64 = CLOSED - 1;

/// One loop, on its caller's stack.
struct Loop<'a> {
	task: &'a (dyn Fn(usize) + Sync),
	tasks: usize,
	next: AtomicUsize,
	panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

impl Loop<'_> {
	/// Runs tasks until none are left, keeping the first panic for the caller.
	fn work(&self) {
		loop {
			let i = self.next.fetch_add(1, Relaxed);
			if i >= self.tasks {
				return;
			}
			if let Err(panic) = catch_unwind(AssertUnwindSafe(|| (self.task)(i))) {
				self.next.store(self.tasks, Relaxed);
				self.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(panic);
			}
		}
	}
}

struct Pool {
	helpers: usize,
	/// Held by the thread whose loop is running.
	caller: Mutex<()>,
	state: AtomicU64,
	/// The running loop (a `Loop` erased of its lifetime): read only by a helper that has
	/// joined, which the caller waits for before its loop goes out of scope.
	current: AtomicPtr<()>,
	finished: AtomicUsize,
	parked: AtomicUsize,
	park: Mutex<()>,
	wake: Condvar,
}

fn pool() -> &'static Pool {
	static POOL: OnceLock<&'static Pool> = OnceLock::new();
	POOL.get_or_init(|| {
		let pool: &'static Pool = Box::leak(Box::new(Pool {
			helpers: rayon::current_num_threads().saturating_sub(1),
			caller: Mutex::new(()),
			state: AtomicU64::new(0),
			current: AtomicPtr::new(std::ptr::null_mut()),
			finished: AtomicUsize::new(0),
			parked: AtomicUsize::new(0),
			park: Mutex::new(()),
			wake: Condvar::new(),
		}));
		for i in 0..pool.helpers {
			std::thread::Builder::new()
				.name(format!("spin-{i}"))
				.spawn(move || pool.help())
				.expect("a helper thread starts");
		}
		pool
	})
}

impl Pool {
	fn help(&self) {
		let mut seen = 0;
		loop {
			let started = Instant::now();
			let mut spins = 0u32;
			let state = loop {
				let state = self.state.load(Acquire);
				if state >> 32 != seen {
					break state;
				}
				std::hint::spin_loop();
				spins = spins.wrapping_add(1);
				if spins.is_multiple_of(1024) && started.elapsed() > SPIN {
					self.sleep_while_at(seen);
				}
			};
			seen = state >> 32;
			if self.join(state) {
				// SAFETY: joined before the loop closed, so its caller waits for `finished`.
				let current = unsafe { &*(self.current.load(Acquire) as *const Loop) };
				current.work();
				self.finished.fetch_add(1, Release);
			}
		}
	}

	/// Parks until a loop after `seen` starts.
	fn sleep_while_at(&self, seen: u64) {
		self.parked.fetch_add(1, SeqCst);
		let mut guard = self.park.lock().unwrap_or_else(|e| e.into_inner());
		while self.state.load(SeqCst) >> 32 == seen {
			guard = self.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
		}
		drop(guard);
		self.parked.fetch_sub(1, SeqCst);
	}

	/// Joins the loop `state` names, unless it has closed.
	fn join(&self, mut state: u64) -> bool {
		let number = state >> 32;
		while state >> 32 == number && state & CLOSED == 0 {
			match self.state.compare_exchange_weak(state, state + 1, AcqRel, Acquire) {
				Ok(_) => return true,
				Err(now) => state = now,
			}
		}
		false
	}

	fn run(&self, current: &Loop) {
		self.current.store(current as *const Loop as *mut (), Release);
		self.finished.store(0, Relaxed);
		let number = (self.state.load(Relaxed) >> 32) + 1;
		self.state.store(number << 32, SeqCst);
		if self.parked.load(SeqCst) > 0 {
			let _guard = self.park.lock().unwrap_or_else(|e| e.into_inner());
			self.wake.notify_all();
		}
		current.work();
		let joined = (self.state.fetch_or(CLOSED, AcqRel) & JOINED) as usize;
		while self.finished.load(Acquire) < joined {
			std::hint::spin_loop();
		}
	}
}

/// Runs `task(0)`, …, `task(tasks − 1)` over this thread and the helpers, and returns when all
/// have run. A panic in a task is raised again here, after the others have stopped.
pub fn for_each(tasks: usize, task: impl Fn(usize) + Sync) {
	let current = Loop { task: &task, tasks, next: AtomicUsize::new(0), panic: Mutex::new(None) };
	let pool = pool();
	match (tasks > 1 && pool.helpers > 0).then(|| pool.caller.try_lock().ok()).flatten() {
		Some(_running) => pool.run(&current),
		None => current.work(),
	}
	if let Some(panic) = current.panic.into_inner().unwrap_or_else(|e| e.into_inner()) {
		resume_unwind(panic);
	}
}

/// [`for_each`] over `data` in chunks of `chunk` items: `task(index, chunk)`.
pub fn for_each_chunk<T: Send>(
	data: &mut [T],
	chunk: usize,
	task: impl Fn(usize, &mut [T]) + Sync,
) {
	for_each_part(data.chunks_mut(chunk.max(1)).collect(), task);
}

/// [`for_each`] over disjoint `parts`: `task(index, part)`.
pub fn for_each_part<T: Send>(parts: Vec<&mut [T]>, task: impl Fn(usize, &mut [T]) + Sync) {
	let parts: Vec<Mutex<&mut [T]>> = parts.into_iter().map(Mutex::new).collect();
	for_each(parts.len(), |i| {
		let mut part = parts[i].lock().unwrap_or_else(|e| e.into_inner());
		task(i, &mut part)
	});
}

#[cfg(test)]
mod tests {
	use super::*;

	#[test]
	fn every_task_runs_once_and_panics_reach_the_caller() {
		for round in 0..2_000usize {
			let tasks = round % 37;
			let counts: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
			for_each(tasks, |i| {
				counts[i].fetch_add(1, Relaxed);
			});
			assert!(counts.iter().all(|c| c.load(Relaxed) == 1), "round {round}");
			if round % 500 == 0 {
				// Long enough for the helpers to park, so waking them is tested too.
				std::thread::sleep(SPIN * 3);
			}
		}
		let mut data = vec![0usize; 1000];
		for_each_chunk(&mut data, 64, |i, chunk| chunk.iter_mut().for_each(|v| *v += i + 1));
		assert!(data.iter().enumerate().all(|(k, &v)| v == k / 64 + 1));
		// Nested and concurrent calls run on their own thread.
		let total = AtomicUsize::new(0);
		std::thread::scope(|scope| {
			for _ in 0..3 {
				scope.spawn(|| {
					for_each(8, |_| {
						for_each(4, |_| {
							total.fetch_add(1, Relaxed);
						})
					})
				});
			}
		});
		assert_eq!(total.load(Relaxed), 3 * 8 * 4);
		let caught = catch_unwind(|| for_each(16, |i| assert!(i != 11, "task {i} fails")));
		assert!(caught.is_err());
		let after = AtomicUsize::new(0);
		for_each(16, |_| {
			after.fetch_add(1, Relaxed);
		});
		assert_eq!(after.load(Relaxed), 16, "the pool works after a panic");
	}
}
