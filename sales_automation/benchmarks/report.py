"""The benchmark's figures: medians, paired differences, ratios and their verdicts, results.md/.json
and the chart."""

import json
import os
import statistics
import sys


def paired_differences(timings: dict) -> dict:
	"""Medians of the per-round differences: each round's variants ran back to back, so a difference
	taken within a round is spared the machine's drift between rounds (a difference of medians is not)."""

	def paired(x: str, y: str) -> float:
		return round(statistics.median(p - q for p, q in zip(timings[x], timings[y], strict=True)) * 1000, 1)

	return {
		"request_ms": paired("b", "i"),  # (b) - (i): one HTTP request to the one call
		"bare_request_ms": round(statistics.median(timings["r"]) * 1000, 1),  # (r): any request
		"app_ms": paired("i", "c"),  # (i) - (c): what the app adds to ERPNext's work
		"rest_extra_ms": paired("a", "c"),  # (a) - (c): the REST flow's seven requests
		# (k) - (c): what ERPNext's own work costs more from a fresh Frappe context, as in a request
		"fresh_context_ms": paired("k", "c"),
		"app_fresh_ms": paired("j", "k"),  # (j) - (k): the app's own cost, both from a fresh context
		"request_fresh_ms": paired("b", "j"),  # (b) - (j): the HTTP request beyond a fresh context
	}


def paired_overhead(timings: dict) -> float:
	"""(b) - (c) taken within each round, over the median (c): the verdict's figure spared the machine's
	drift between rounds, shown beside it as a check on its noise."""
	within = statistics.median(b - c for b, c in zip(timings["b"], timings["c"], strict=True))
	return within / statistics.median(timings["c"])


def summary(samples: list[float]) -> dict:
	ordered = sorted(samples)
	p95 = ordered[min(len(ordered) - 1, max(0, round(0.95 * len(ordered)) - 1))]
	return {
		"n": len(samples),
		"median_ms": round(statistics.median(samples) * 1000, 1),
		"p95_ms": round(p95 * 1000, 1),
	}


def ratios(results: dict, line_counts: list[int]) -> dict:
	variants = results["variants"]
	first = line_counts[0]
	floor_rate = 60_000 / variants[f"c_{first}"]["median_ms"]
	out = {
		"a_over_b": round(variants[f"a_{first}"]["median_ms"] / variants[f"b_{first}"]["median_ms"], 3),
		"floor_orders_per_minute": round(floor_rate, 1),
		"d_over_2x_floor": round(results["d"]["orders_per_minute"] / (2 * floor_rate), 3),
		# what a second worker adds (2.0 would be perfect scaling; the machine's cores bound it)
		"d_workers_over_d_1": round(
			results["d"]["orders_per_minute"] / results["d_by_workers"]["1"]["orders_per_minute"], 3
		),
		"f_ms": results["f"]["added_ms"],
		"g_duplicates": results["g"]["duplicates"],
	}
	for n in line_counts:
		# three places: a target such as 0.05 is judged on 0.053, not on 0.05 rounded
		b, c = variants[f"b_{n}"]["median_ms"], variants[f"c_{n}"]["median_ms"]
		out[f"b_over_c_{n}"] = round(b / c, 3)
		# the physical limit: what one call can save is the REST flow minus the floor, so its own cost
		# above the floor, (b - c) / c, is what is judged
		out[f"overhead_{n}"] = round((b - c) / c, 3)
		out[f"paired_overhead_{n}"] = round(results["paired_overhead"][str(n)], 3)
	# the best a/b could be if the app itself cost nothing: (b) = the floor + one request
	request_ms = results["paired"]["request_ms"]
	out["a_over_b_with_no_app_cost"] = round(
		variants[f"a_{first}"]["median_ms"] / (variants[f"c_{first}"]["median_ms"] + request_ms), 3
	)
	# (b) against the floor as a request would meet it (from a fresh Frappe context): shown, not judged
	fresh_floor = variants[f"k_{first}"]["median_ms"]
	out[f"b_over_fresh_floor_{first}"] = round(
		(variants[f"b_{first}"]["median_ms"] - fresh_floor) / fresh_floor, 3
	)
	return out


TARGETS = {
	"d_over_2x_floor": (">=", 0.85),
	"f_ms": ("<=", 5),
	"g_duplicates": ("<=", 0),
}


def verdict(name: str, value: float) -> str:
	if name.startswith("overhead_"):
		op, target = "<=", 0.05
	elif name in TARGETS:
		op, target = TARGETS[name]
	else:
		return ""
	met = value >= target if op == ">=" else value <= target
	return f"{op} {target}: {'met' if met else 'MISSED'}"


def results_dir(out_dir: str | None) -> str:
	# the repository's benchmarks/results, beside the app's package
	repo_dir = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
	out_dir = out_dir or os.path.join(repo_dir, "benchmarks", "results")
	os.makedirs(out_dir, exist_ok=True)
	return out_dir


def write(results: dict, line_counts: list[int], out_dir: str | None, chart: bool):
	out_dir = results_dir(out_dir)
	lines = [
		"# Sales cycle benchmark",
		"",
		f"Site `{results['site']}`, {results['reps']} interleaved rounds per variant (100 lines: half as many).",
		"",
		"| variant | lines | runs | median ms | p95 ms | SQL statements | Redis commands |",
		"| --- | --- | --- | --- | --- | --- | --- |",
	]
	labels = {
		"a": "(a) REST, 7 calls",
		"b": "(b) run_sales_cycle, 1 call",
		"c": "(c) in-process floor",
		"i": "(i) run_sales_cycle in process, no HTTP",
		"j": "(j) (i) from a fresh Frappe context",
		"k": "(k) (c) from a fresh Frappe context",
		"r": "(r) a bare authenticated request",
	}
	for key, stats in results["variants"].items():
		variant, n = key.split("_")
		lines.append(
			f"| {labels[variant]} | {n} | {stats['n']} | {stats['median_ms']} | {stats['p95_ms']} "
			f"| {stats['statements']} | {stats['redis_commands']} |"
		)
	f = results["f"]
	lines.append("")
	for d in results["d_by_workers"].values():
		lines.append(
			f"(d) background: {d['orders']} orders, {d['workers']} worker(s): {d['orders_per_minute']} "
			f"orders/min ({d['seconds']} s, of which submitting {d['submit_seconds']} s); runs "
			f"{d['runs_by_status']}; duplicates {d['duplicates']}."
		)
	lines += [
		"",
		f"(g) {results['g']['callers']} callers racing run_sales_cycle on each of {results['g']['orders']} "
		f"existing orders: answers {results['g']['answers_by_status_code']}; "
		f"duplicates {results['g']['duplicates']}.",
		"",
		f"(f) Sales Order submit: {f['submit_with_hook']['median_ms']} ms with the hook (no rule matches), "
		f"{f['submit_without_hook']['median_ms']} ms without; the hook itself {f['hook_ms']} ms.",
		"",
		"| ratio | value | target |",
		"| --- | --- | --- |",
	]
	for name, value in results["ratios"].items():
		lines.append(f"| {name} | {value} | {verdict(name, value)} |")
	lines += where_the_time_goes(results, line_counts[0])
	with open(os.path.join(out_dir, "results.md"), "w") as handle:
		handle.write("\n".join(lines) + "\n")
	with open(os.path.join(out_dir, "results.json"), "w") as handle:
		json.dump(results, handle, indent=1, default=str)
	if chart:
		draw(results, line_counts, os.path.join(out_dir, "chart.png"))
	print("\n".join(lines))


def where_the_time_goes(results: dict, first: int) -> list[str]:
	variants, ratios, profile, paired = (
		results["variants"],
		results["ratios"],
		results["profile"],
		results["paired"],
	)
	a, c = (variants[f"{name}_{first}"]["median_ms"] for name in "ac")
	lines = [
		"",
		"## Where (b)'s time goes",
		"",
		f"Medians of the differences within each round ({first} line): one HTTP request to the one call, "
		f"(b) - (i), {paired['request_ms']} ms, against {paired['bare_request_ms']} ms for a bare "
		f"authenticated request (r); the app's own cost, less the reads its prefetches spare ERPNext's "
		f"documents, (i) - (c), {paired['app_ms']} ms; the REST "
		f"flow's seven requests, (a) - (c), {paired['rest_extra_ms']} ms.",
		"",
		f"(j) and (k) start each call as a request starts (`frappe.init` and a new database connection, "
		f"not timed): Frappe's per-request caches, the Singles and link values `Database.value_cache` "
		f"keeps on the connection among them, start empty, while (c) and (i) run on in this long-lived "
		f"process. Medians of the differences within each round: (k) - (c), what a fresh context costs "
		f"ERPNext's own work, {paired['fresh_context_ms']} ms; (j) - (k), the app's own cost from there, "
		f"{paired['app_fresh_ms']} ms; (b) - (j), the HTTP request beyond it, {paired['request_fresh_ms']} "
		f"ms against (r). (b) over (k) is `b_over_fresh_floor_{first}`, shown, not judged.",
		"",
		"SQL statements per call (medians, counted by MariaDB around each call; the machine's noise does "
		"not reach them): " + statements_line(variants, first),
		"",
		"Redis commands per call (medians, counted by the cache server around each call, a pipeline's "
		"commands one each): " + redis_line(variants, first),
		"",
		f"Profile of (i) over {profile['calls']} calls (pyinstrument, `profile_b.txt`): ERPNext's document "
		f"work (the order's submit, the three mappers, the three submits) {profile['erpnext_share']:.1%}, "
		f"the rest {profile['app_share']:.1%}; its largest items (part of it is only first use: a DocType's "
		f"metadata or permissions loaded by the app's check and then used by ERPNext's submit):",
		"",
	]
	lines += [f"- `{item['call']}`: {item['share']:.1%}" for item in profile["app_top"]]
	lines += [
		"",
		f"Were the app's own cost zero, (b) would be the floor plus one request, "
		f"{round(c + paired['request_ms'], 1)} ms, and a/b {ratios['a_over_b_with_no_app_cost']}. "
		f"The verdicts judge (b - c) / c (overhead_N, at most 5%): the REST flow minus the floor "
		f"({round(a - c, 1)} ms) is all that one call can save, so a fixed a/b says nothing of the app; "
		f"b/c and a/b are shown for comparison with earlier runs. paired_overhead_N is the same figure "
		f"from the differences within each round, a check on how much of the verdict is the machine's noise.",
	]
	return lines


def counts_of(variants: dict, first: int, what: str) -> dict:
	"""{variant: its median count of `what` (statements, redis_commands)} at `first` lines."""
	return {name: variants[f"{name}_{first}"][what] for name in "bcijkr"}


def statements_line(variants: dict, first: int) -> str:
	count = counts_of(variants, first, "statements")
	return (
		f"one request to the one call sends {count['b'] - count['i']} more than the same call in "
		f"process, (b) - (i); any request sends {count['r']}, (r); a fresh context makes ERPNext's own work "
		f"send {count['k'] - count['c']} more, (k) - (c); the app's own are {count['i'] - count['c']} "
		f"warm, (i) - (c), and {count['j'] - count['k']} from a fresh context, (j) - (k): there the app's "
		f"one-statement fetch of ERPNext's Settings (settings.prefetch_cycle_settings) spares ERPNext's "
		f"documents their field-by-field reads."
	)


# why the one call sends fewer Redis commands than the floor (redis_line)
REDIS_COMMANDS_EXPLAINED = (
	"ERPNext's documents read DocType metadata, table columns, per-DocType maps and cached documents "
	"from Redis one command each, and the floor's `frappe.set_user` empties Frappe's per-request copy of "
	"them as every request starts with it empty; the app reads the values its last two cycles both read "
	"in one pipeline as a cycle starts (cached_values.prefetch), so (i) - (c) can be below zero. Most of "
	"what is left is Frappe's own writes: a cached document dropped on every save of it, realtime events."
)


def redis_line(variants: dict, first: int) -> str:
	count = counts_of(variants, first, "redis_commands")
	return (
		f"the one call {count['b']}, {count['c'] - count['b']} fewer than the floor's {count['c']} "
		f"({count['k']} from a fresh context); any request {count['r']}; the same call in process "
		f"{count['i']} ({count['j']} from a fresh context). " + REDIS_COMMANDS_EXPLAINED
	)


def draw(results: dict, line_counts: list[int], path: str):
	import matplotlib

	matplotlib.use("Agg")
	import matplotlib.pyplot as plt

	fig, axes = plt.subplots(1, len(line_counts), figsize=(4 * len(line_counts), 4))
	axes = axes if len(line_counts) > 1 else [axes]
	for axis, n in zip(axes, line_counts, strict=True):
		keys = [key for key in results["variants"] if key.endswith(f"_{n}")]
		medians = [results["variants"][key]["median_ms"] for key in keys]
		p95 = [results["variants"][key]["p95_ms"] - results["variants"][key]["median_ms"] for key in keys]
		axis.bar([key.split("_")[0] for key in keys], medians, yerr=[[0] * len(p95), p95], capsize=4)
		axis.set_title(f"{n} line(s) per order")
		axis.set_ylabel("ms per order (median, bar to p95)")
	fig.suptitle(
		"a: REST 7 calls, b: run_sales_cycle, c: in-process floor, i: b without HTTP, j/k: i/c from a fresh context"
	)
	fig.tight_layout()
	fig.savefig(path, dpi=100)


def log(message: str):
	"""Progress, on stderr: `bench execute` prints the run's return value on stdout, which make bench drops."""
	print(f"[bench] {message}", file=sys.stderr, flush=True)
