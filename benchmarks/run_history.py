"""The desk's views of the runs and the one call, with and without a long history (issue 26), side by
side on one site.

Measures the workspace chart's data source, the four "today" number cards, the run list (frappe.get_list
sorted by creation desc, 20 rows), get_run, the stuck-orders report (over open orders of which some have
Failed or Queued runs), the one call (run_sales_cycle for a new order, in-process as the API runs it,
committed) and its async hand-off (202 once the run is recorded and queued; the job is dropped, not run).
Then it adds HISTORY ended runs (three step rows each) by multi-row INSERT, older than the chart's 14 days
and younger than the 90 days runs are kept, measures again, prints the ratios, writes
benchmarks/results/run_history.md and .json, and removes the history it added (--keep leaves it). Each
round runs every view once, starting with a different one, so the machine's drift hits them alike. Not a
test: timings belong here.

	cd ~/.sales_automation/frappe-bench/sites
	../env/bin/python /path/to/benchmarks/run_history.py --site sa-hist.localhost [--history 300000] [--reps 10]

The site needs a company, items with stock and a customer (setup.demo.setup_demo); the script adds the
benchmark's own (sales_automation.benchmarks.prepare) and the orders of the stuck-orders report.
"""

import argparse
import json
import os
import random
import statistics
import time
from datetime import timedelta

import frappe
from frappe.utils import add_days, now_datetime, nowdate

PREFIX = "HIST-"  # the names of the runs and steps this script adds, so it can remove them
RECENT = "R-"  # the runs of the last week present in both measurements (what a site has anyway)
STUCK = "S-"  # the runs of the report's open orders, among the recent ones
TARGET = 1.5
CARDS = (
	"Sales Automation Runs Completed Today",
	"Sales Automation Runs Failed Today",
	"Sales Automation Runs Partially Completed Today",
	"Sales Automation Runs Queued Today",
)
ENDED = ("Completed", "Partially Completed", "Failed", "Cancelled")
STEPS = ("Delivery Note", "Sales Invoice", "Payment Entry")
RUN_FIELDS = [
	"name", "creation", "modified", "owner", "modified_by", "docstatus", "sales_order", "status",
	"trigger", "execution_mode", "company", "customer", "currency", "grand_total", "paid_amount",
	"outstanding_amount", "attempts", "started_at", "finished_at", "rule", "error", "next_retry_at",
]  # fmt: skip
STEP_FIELDS = [
	"name", "creation", "modified", "owner", "modified_by", "docstatus", "parent", "parenttype",
	"parentfield", "idx", "step", "status", "started_at", "finished_at", "error_class", "message",
]  # fmt: skip
# the report's open orders: this many, of which a third have a Failed run, a third a Queued one (a retry
# waiting) and a third none (the report then asks the rules); the history holds older runs of each
OPEN_ORDERS = 60
HISTORY_PER_OPEN_ORDER = 8
CALLS = ("one call (run_sales_cycle, 1 line)", "async hand-off (202, run queued)")
# reads no run: what the machine's drift between the two measurements does to a view (not judged)
CONTROL = "control: order list (get_list Sales Order, 20; no runs)"


def views(env) -> dict:
	"""What each measured view does, as the desk (or an integration) asks for it."""
	from frappe.desk.doctype.number_card.number_card import get_result

	from sales_automation.api.runs import get_run
	from sales_automation.benchmarks.variants import in_process_call
	from sales_automation.sales_automation.dashboard_chart_source.sales_automation_runs_by_status import (
		sales_automation_runs_by_status as chart,
	)
	from sales_automation.sales_automation.report.orders_stuck_between_steps import (
		orders_stuck_between_steps as report,
	)

	cards = [frappe.get_doc("Number Card", name) for name in CARDS]
	newest_run = frappe.get_all(
		"Sales Automation Run",
		# a run of a real order (an open order's Failed or Queued run), as the desk's runs are
		filters={"name": ["like", f"{PREFIX}{RECENT}{STUCK}%"]},
		order_by="creation desc",
		limit=1,
		pluck="name",
	)

	def one_call():
		in_process_call(env, 1)  # the benchmark's (i): run_sales_cycle as the server runs it, committed

	return {
		"chart (runs per day, 14 days)": lambda: chart.get(filters={"days": 14}),
		"number cards (4, today)": lambda: [get_result(card, card.filters_json) for card in cards],
		"run list (get_list, creation desc, 20)": lambda: frappe.get_list(
			"Sales Automation Run",
			fields=["name", "status", "sales_order", "customer", "trigger", "creation"],
			order_by="creation desc",
			limit_page_length=20,
		),
		"get_run": (lambda: get_run(run=newest_run[0])) if newest_run else None,
		"stuck-orders report": lambda: report.execute({}),
		CALLS[0]: one_call,
		CALLS[1]: lambda: async_call(env),
		CONTROL: lambda: frappe.get_list(
			"Sales Order",
			fields=["name", "status", "customer", "grand_total", "creation"],
			order_by="creation desc",
			limit_page_length=20,
		),
	}


def async_call(env):
	"""run_sales_cycle with "async": true as the server runs a request of it: the form_dict and request
	the call reads, the call, then the request's commit (which queues the job)."""
	from frappe.utils import set_request

	from sales_automation.api.cycle import run_sales_cycle
	from sales_automation.benchmarks.variants import BENCH_USER, order_payload

	body = {"order": order_payload(env, 1), "async": True}
	set_request(method="POST", path="/api/method/sales_automation.api.run_sales_cycle", json=body)
	frappe.set_user(BENCH_USER)  # before the form_dict, which it empties
	frappe.local.form_dict = frappe._dict(body)
	frappe.local.response = frappe._dict()
	try:
		answer = run_sales_cycle(order=body["order"])
		frappe.db.commit()  # nosemgrep - what the request does after the call; it queues the job
		assert frappe.local.response.get("http_status_code") == 202, answer
	finally:
		frappe.local.request = None
		frappe.local.form_dict = frappe._dict()
		frappe.set_user("Administrator")


def set_aside_new_orders(since):
	"""Not timed. The calls' orders closed, and the async runs' jobs dropped and the runs cancelled (no
	worker takes them): the stuck-orders report sees the same open orders in both measurements."""
	from sales_automation.background import drop_queued_job

	frappe.db.rollback()
	for run in frappe.get_all(
		"Sales Automation Run",
		filters={"status": "Queued", "creation": [">=", since], "name": ["not like", f"{PREFIX}%"]},
		fields=["name", "sales_order"],
	):
		drop_queued_job(run.sales_order)
		frappe.db.set_value("Sales Automation Run", run.name, "status", "Cancelled")
	frappe.db.sql(
		"UPDATE `tabSales Order` SET status = 'Closed' WHERE docstatus = 1 AND creation >= %s", since
	)
	frappe.db.commit()  # nosemgrep - a script of its own


def measure(env, reps: int) -> dict:
	"""Every view's times in ms over `reps` rounds; each round runs every view once, starting with the
	next one each round."""
	measured = {label: view for label, view in views(env).items() if view is not None}
	started_at = now_datetime()
	for label, view in measured.items():
		for _warm_up in range(2 if label in CALLS else 3):
			frappe.db.rollback()
			view()
	times = {label: [] for label in measured}
	labels = list(measured)
	for round_no in range(reps):
		shift = round_no % len(labels)
		for label in labels[shift:] + labels[:shift]:
			frappe.db.rollback()  # each in a transaction of its own, as each request has
			started = time.perf_counter()
			measured[label]()
			times[label].append((time.perf_counter() - started) * 1000)
		set_aside_new_orders(started_at)
	frappe.db.rollback()
	times["_report_rows"] = len(measured["stuck-orders report"]()[1])
	return times


def open_orders(env) -> list:
	"""OPEN_ORDERS submitted orders of ten days ago for the benchmark's Background rule (the report's
	orders), made once per site; the names."""
	from sales_automation.benchmarks.variants import BACKGROUND_CUSTOMER, order_payload

	names = frappe.get_all(
		"Sales Order",
		filters={
			"customer": BACKGROUND_CUSTOMER,
			"docstatus": 1,
			"status": ["not in", ["Closed", "On Hold"]],
		},
		order_by="name asc",
		pluck="name",
	)
	for _number in range(OPEN_ORDERS - len(names)):
		sales_order = frappe.get_doc(
			{"doctype": "Sales Order", **order_payload(env, 1, customer=BACKGROUND_CUSTOMER)}
		)
		sales_order.flags.skip_sales_automation = True  # its runs are written below
		sales_order.submit()
		names.append(sales_order.name)
	ten_days_ago = now_datetime() - timedelta(days=10)
	frappe.db.sql("UPDATE `tabSales Order` SET creation = %s WHERE name IN %s", (ten_days_ago, tuple(names)))
	frappe.db.commit()  # nosemgrep - a script of its own
	return names[:OPEN_ORDERS]


def with_runs(orders: list) -> list:
	"""The open orders that have runs: the first two thirds."""
	return orders[: 2 * len(orders) // 3]


def add_stuck_runs(env, orders: list):
	"""Of the open orders, a third with a Failed run and a third with a Queued one (a transient error
	retried later), 1 to 7 days old: the report's path through an order's latest run and its failed step."""
	from sales_automation.benchmarks.variants import BACKGROUND_RULE

	now = now_datetime()
	runs, steps = [], []
	random.seed(27)
	for number, sales_order_name in enumerate(with_runs(orders)):
		failed = number % 2 == 0
		created = now - timedelta(days=random.uniform(1, 7))
		name = f"{PREFIX}{RECENT}{STUCK}{number:04d}"
		order = frappe.db.get_value(
			"Sales Order", sales_order_name, ["company", "customer", "currency", "grand_total"], as_dict=True
		)
		runs.append(
			(
				name, created, created, "Administrator", "Administrator", 0, sales_order_name,
				"Failed" if failed else "Queued", "Submit", "Background", order.company, order.customer,
				order.currency, order.grand_total, 0, order.grand_total, 3 if failed else 1, created,
				created if failed else None, BACKGROUND_RULE, "benchmark: the step failed",
				None if failed else now + timedelta(minutes=30),
			)
		)  # fmt: skip
		steps.append(
			(
				f"{name}-1", created, created, "Administrator", "Administrator", 0, name,
				"Sales Automation Run", "steps", 1, STEPS[0], "Failed", created, created,
				"Validation" if failed else "Transient", "benchmark: the step failed",
			)
		)  # fmt: skip
		for idx, step in enumerate(STEPS[1:], 2):
			steps.append(
				(
					f"{name}-{idx}", created, created, "Administrator", "Administrator", 0, name,
					"Sales Automation Run", "steps", idx, step, "Pending", None, None, None, None,
				)
			)  # fmt: skip
	frappe.db.bulk_insert("Sales Automation Run", RUN_FIELDS, runs)
	frappe.db.bulk_insert("Sales Automation Run Step", STEP_FIELDS, steps)
	frappe.db.commit()  # nosemgrep - a script of its own


def add_history(
	count: int,
	batch: int = 5000,
	days: tuple[float, float] = (15, 89),
	tag: str = "",
	orders: list | None = None,
):
	"""`count` ended runs of `days` ago with three steps each, for 1/3 as many orders; with `orders`, the
	first HISTORY_PER_OPEN_ORDER runs per order are earlier attempts at those (Failed, with their step):
	their latest run stays the recent one, so the report lists the same orders the same way with them."""
	from sales_automation.benchmarks.variants import BACKGROUND_RULE

	company = frappe.db.get_value("Company", {}, "name", order_by="creation asc")
	customer = frappe.db.get_value("Customer", {}, "name", order_by="creation asc")
	currency = frappe.db.get_value("Company", company, "default_currency")
	of_open_orders = len(orders or ()) * HISTORY_PER_OPEN_ORDER
	now = now_datetime()
	random.seed(26)
	for start in range(0, count, batch):
		runs, steps = [], []
		for number in range(start, min(start + batch, count)):
			created = now - timedelta(days=random.uniform(*days))
			finished = created + timedelta(seconds=3)
			name = f"{PREFIX}{tag}{number:07d}"
			if number < of_open_orders:
				sales_order_name, status, rule = orders[number % len(orders)], "Failed", BACKGROUND_RULE
			else:
				sales_order_name, rule = f"{PREFIX}{tag}SO-{number // 3:06d}", None
				status = random.choices(ENDED, weights=(90, 4, 4, 2))[0]
			runs.append(
				(
					name, created, finished, "Administrator", "Administrator", 0, sales_order_name, status,
					"Submit", "Background", company, customer, currency, 100,
					100 if status == "Completed" else 0, 0 if status == "Completed" else 100, 1, created,
					finished, rule, None if status == "Completed" else "benchmark", None,
				)
			)  # fmt: skip
			for idx, step in enumerate(STEPS, 1):
				failed = status != "Completed"
				steps.append(
					(
						f"{name}-{idx}", created, finished, "Administrator", "Administrator", 0, name,
						"Sales Automation Run", "steps", idx, step, "Failed" if failed else "Completed",
						created, finished, "Validation" if failed else None, None,
					)
				)  # fmt: skip
		frappe.db.bulk_insert("Sales Automation Run", RUN_FIELDS, runs, chunk_size=batch)
		frappe.db.bulk_insert("Sales Automation Run Step", STEP_FIELDS, steps, chunk_size=batch * 3)
		frappe.db.commit()  # nosemgrep - a script of its own: the history must outlive it


def settle(limit: int = 300):
	"""Wait (at most `limit` s) for MariaDB to write out the pages the INSERTs dirtied, so the second
	measurement does not share the machine with that."""
	started = time.perf_counter()
	while time.perf_counter() - started < limit:
		dirty = int(frappe.db.sql("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")[0][1])
		if dirty < 500:
			break
		time.sleep(5)
	time.sleep(10)
	print(f"settled in {time.perf_counter() - started:.0f} s")


def remove_history():
	frappe.db.sql("DELETE FROM `tabSales Automation Run Step` WHERE name LIKE %s", f"{PREFIX}%")
	frappe.db.sql("DELETE FROM `tabSales Automation Run` WHERE name LIKE %s", f"{PREFIX}%")
	frappe.db.commit()  # nosemgrep - a script of its own


def band(samples: list[float]) -> dict:
	ordered = sorted(samples)
	p90 = ordered[min(len(ordered) - 1, max(0, round(0.9 * len(ordered)) - 1))]
	return {
		"n": len(samples),
		"min": round(ordered[0], 2),
		"median": round(statistics.median(ordered), 2),
		"p90": round(p90, 2),
		"max": round(ordered[-1], 2),
	}


def verdicts(before: dict, after: dict) -> dict:
	"""Per view: both bands, the ratio of the medians (judged) and of the p90s; "near" when the two
	ratios fall on either side of the target, i.e. the verdict is within the noise."""
	out = {}
	for label, samples in before.items():
		if label.startswith("_"):
			continue
		without, with_ = band(samples), band(after[label])
		ratio = with_["median"] / without["median"]
		ratio_p90 = with_["p90"] / without["p90"]
		met = "yes" if ratio <= TARGET else "no"
		if label == CONTROL:
			met = "(not judged)"
		if label != CONTROL and (ratio <= TARGET) != (ratio_p90 <= TARGET):
			met += " (near: p90s on the other side)"
		out[label] = {
			"without_ms": without,
			"with_ms": with_,
			"ratio": round(ratio, 2),
			"ratio_p90": round(ratio_p90, 2),
			"met": met,
		}
	return out


def report(results: dict, history: int, reps: int, site: str) -> str:
	def cell(figures: dict) -> str:
		return f"{figures['median']:.1f} ({figures['min']:.1f}–{figures['p90']:.1f}–{figures['max']:.1f})"

	lines = [
		"# The desk's views of the runs and the one call, with and without a long history",
		"",
		f"`benchmarks/run_history.py --history {history} --reps {reps}` on {site}, "
		f"{frappe.utils.now()[:16]}: {history:,} ended runs (three step rows each) of 15 to 89 days ago "
		f"added by multi-row INSERT to a site with 500 runs of the last week and {OPEN_ORDERS} open orders "
		f"(a third with a Failed run, a third with a Queued one, {HISTORY_PER_OPEN_ORDER} earlier Failed "
		"runs each among the history). In-process; each round runs every view once, in a new transaction. "
		"The calls are committed as a request commits; the async hand-off's job is dropped, not run. "
		f"Milliseconds: median (min–p90–max) of {reps} rounds; the verdict is on the ratio of the medians, "
		f"target at most {TARGET}x; the ratio of the p90s is the noise check.",
		"",
		"| view | without (ms) | with (ms) | ratio (medians) | ratio (p90s) | met |",
		"|---|---:|---:|---:|---:|---|",
	]
	for label, figures in results.items():
		lines.append(
			f"| {label} | {cell(figures['without_ms'])} | {cell(figures['with_ms'])} | "
			f"{figures['ratio']:.2f} | {figures['ratio_p90']:.2f} | {figures['met']} |"
		)
	return "\n".join(lines) + "\n"


def main():
	parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--history", type=int, default=300_000)
	parser.add_argument("--reps", type=int, default=10)
	parser.add_argument("--keep", action="store_true", help="leave the history in the site")
	parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
	args = parser.parse_args()

	frappe.init(site=args.site)
	frappe.connect()
	frappe.set_user("Administrator")
	try:
		from sales_automation.benchmarks import prepare

		remove_history()
		env = prepare(1)
		orders = open_orders(env)
		add_history(500, days=(0, 7), tag=RECENT)
		add_stuck_runs(env, orders)
		before = measure(env, args.reps)
		print(f"without: the report lists {before['_report_rows']} orders")
		started = time.perf_counter()
		add_history(args.history, orders=with_runs(orders))
		print(f"added {args.history:,} runs in {time.perf_counter() - started:.0f} s")
		frappe.db.sql("ANALYZE TABLE `tabSales Automation Run`, `tabSales Automation Run Step`")
		settle()
		after = measure(env, args.reps)
		print(f"with: the report lists {after['_report_rows']} orders")
		results = verdicts(before, after)
		text = report(results, args.history, args.reps, args.site)
		print(text)
		os.makedirs(args.out, exist_ok=True)
		with open(os.path.join(args.out, "run_history.md"), "w") as out:
			out.write(text)
		with open(os.path.join(args.out, "run_history.json"), "w") as out:
			json.dump(
				{
					"site": args.site,
					"history": args.history,
					"reps": args.reps,
					"report_rows": {"without": before["_report_rows"], "with": after["_report_rows"]},
					"views": results,
					"samples_ms": {
						label: {"without": before[label], "with": after[label]} for label in results
					},
				},
				out,
				indent=1,
			)
	finally:
		if not args.keep:
			remove_history()
		frappe.destroy()


if __name__ == "__main__":
	main()
