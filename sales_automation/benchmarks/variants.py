"""The benchmark's variants: each runs one order (or, for (d) and (g), many) the way it measures."""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import frappe
from frappe.query_builder.functions import Count
from frappe.utils import add_days, nowdate

from sales_automation.background import queue_of
from sales_automation.benchmarks.report import results_dir, summary
from sales_automation.constants import SUBMIT

FLOOR_CUSTOMER = "Bench Customer"
BACKGROUND_CUSTOMER = "Bench Background Customer"
BACKGROUND_RULE = "Bench Background"
BENCH_USER = "bench@demo-sales.example"


def order_payload(env, n: int, customer: str | None = None, first: int = 0) -> dict:
	"""An order of `n` lines, starting at item `first` of the benchmark's items."""
	item_codes = [env.item_codes[(first + idx) % len(env.item_codes)] for idx in range(n)]
	return {
		"customer": customer or FLOOR_CUSTOMER,
		"company": env.company,
		"delivery_date": add_days(nowdate(), 3),
		"items": [
			{"item_code": item_code, "qty": 1, "rate": 10 + idx, "warehouse": env.warehouse}
			for idx, item_code in enumerate(item_codes)
		],
	}


def rest_flow(server, http, env, n: int) -> str:
	"""(a) what an integration does today: 7 round trips, token auth, keep-alive."""
	from sales_automation.live_server import rest_cycle

	return rest_cycle(http, server.url, order_payload(env, n))["Payment Entry"]["name"]


def one_call(server, http, env, n: int) -> str:
	"""(b) the same order through run_sales_cycle: one round trip."""
	response = http.post(
		f"{server.url}/api/method/sales_automation.api.run_sales_cycle", json={"order": order_payload(env, n)}
	)
	response.raise_for_status()
	return response.json()["message"]["payment_entry"]


def bare_request(server, http) -> str:
	"""(r) an authenticated request that does nothing: what any request costs here."""
	response = http.get(f"{server.url}/api/method/frappe.auth.get_logged_user")
	response.raise_for_status()
	return response.json()["message"]


def in_process_call(env, n: int) -> str:
	"""(i) what (b) runs on the server, called in this process: (b) without the HTTP request."""
	from sales_automation.api.cycle import run_sales_cycle

	frappe.set_user(BENCH_USER)
	try:
		answer = run_sales_cycle(order=order_payload(env, n))
		frappe.db.commit()  # nosemgrep - the server and workers measured read what the benchmark commits
		return answer["payment_entry"]
	finally:
		frappe.set_user("Administrator")


def fresh_context():
	"""Start Frappe's per-request state afresh, as every request and background job starts it: `frappe.init`
	and a new database connection, so Frappe's caches of one request (the local cache, and the Singles
	and link values `Database.value_cache` keeps on the connection) are empty. Not timed: the variants
	(j) and (k) measure what the work costs from there."""
	site, sites_path, flags = frappe.local.site, frappe.local.sites_path, frappe.local.flags
	frappe.db.close()
	frappe.destroy()
	frappe.init(site=site, sites_path=sites_path)
	frappe.connect()
	frappe.local.flags = flags  # what the caller set (the test runner's in_test) holds on


def statements_so_far(scope: str = "GLOBAL") -> int:
	"""MariaDB's count of the statements its clients have sent (this count's own included): on every
	connection, or with scope="SESSION" on this one. Nothing else uses the site during the timed rounds,
	so the difference around a call is what the call sent, from this process or from the server it
	asked; unlike time, the machine's noise does not reach it."""
	status = (
		"SHOW SESSION STATUS LIKE 'Questions'"
		if scope == "SESSION"
		else "SHOW GLOBAL STATUS LIKE 'Questions'"
	)
	return int(frappe.db.sql(status)[0][1])  # nosemgrep - a server status, which frappe.qb cannot ask


def redis_commands_so_far() -> int:
	"""The site's cache server's count of the commands it has processed (this count's own included), from
	every client: statements_so_far's counterpart for Redis, where Frappe keeps DocType metadata, cached
	documents and per-DocType maps. A pipeline's commands count one each."""
	return int(frappe.cache.info("stats")["total_commands_processed"])


# The app's functions whose calls into Frappe / ERPNext are the cycle's documents themselves: the
# order's submit, the three mappers and the three submits. Everything else the call does is the app's.
DOCUMENT_WORK = {
	"create_order",
	"map_delivery_note",
	"map_invoice_from_order",
	"map_invoice_from_delivery_note",
	"map_payment",
	"save_new",
	"finish_document",
}


def profile_one_call(env, reps: int, out_dir: str | None) -> dict:
	"""pyinstrument over `reps` calls of (i): the share of ERPNext's document work, the app's own share
	and what the app's own time is spent on. The profiler slows everything alike; shares are kept."""
	from pyinstrument import Profiler

	in_process_call(env, 1)
	profiler = Profiler(interval=0.001)
	profiler.start()
	for _ in range(reps):
		in_process_call(env, 1)
	profiler.stop()
	session = profiler.last_session

	totals = {"erpnext": 0.0, "app": 0.0}
	app_items: dict[str, float] = {}

	def is_app(frame) -> bool:
		return (frame.file_path_short or "").startswith("sales_automation/")

	def walk(frame, caller: str):
		if is_app(frame):
			totals["app"] += frame.total_self_time
			for child in frame.children:
				walk(child, frame.function)
		elif caller in DOCUMENT_WORK or (frame.file_path_short or "").startswith(("erpnext/", "payments/")):
			totals["erpnext"] += frame.time
		else:  # a query, a permission check, the run's own record: asked for by the app
			totals["app"] += frame.time
			key = f"{caller} -> {frame.function}"
			app_items[key] = app_items.get(key, 0.0) + frame.time

	def find(frame):
		if frame.function == "run_sales_cycle" and is_app(frame):
			walk(frame, "run_sales_cycle")
			return
		for child in frame.children:
			find(child)

	find(session.root_frame())  # unprocessed: each call is its own subtree
	whole = sum(totals.values()) or 1.0
	out_dir = results_dir(out_dir)
	with open(os.path.join(out_dir, "profile_b.txt"), "w") as handle:
		handle.write(profiler.output_text(unicode=False, color=False, show_all=False))
	return {
		"calls": reps,
		"erpnext_share": round(totals["erpnext"] / whole, 4),
		"app_share": round(totals["app"] / whole, 4),
		"app_top": [
			{"call": key, "share": round(value / whole, 4)}
			for key, value in sorted(app_items.items(), key=lambda item: -item[1])[:8]
		],
	}


def floor(env, n: int) -> str:
	"""(c) the same four documents through ERPNext's Python API in this process; no sales_automation code.

	Each document is submitted unsaved (one save, one validation), the cheapest pattern the API offers."""
	from erpnext.accounts.doctype.payment_entry.payment_entry import get_payment_entry
	from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note
	from erpnext.stock.doctype.delivery_note.delivery_note import make_sales_invoice

	frappe.set_user(BENCH_USER)
	try:
		sales_order = frappe.get_doc({"doctype": "Sales Order", **order_payload(env, n)})
		sales_order.flags.skip_sales_automation = True
		sales_order.submit()
		delivery_note = make_delivery_note(sales_order.name)
		delivery_note.submit()
		sales_invoice = make_sales_invoice(delivery_note.name)
		sales_invoice.submit()
		payment_entry = get_payment_entry("Sales Invoice", sales_invoice.name)
		payment_entry.reference_no = sales_order.name
		payment_entry.reference_date = nowdate()
		payment_entry.submit()
		frappe.db.commit()  # nosemgrep - the server and workers measured read what the benchmark commits
		return payment_entry.name
	finally:
		frappe.set_user("Administrator")


def submit_overhead(env, rounds: int) -> dict:
	"""(f) a Sales Order submit with the app's hook in place (no rule matches) against the hook removed."""
	from sales_automation import engine

	hooks = frappe.get_doc_hooks().setdefault("Sales Order", {})
	with_hook = list(hooks.get("on_submit", []))
	without_hook = [path for path in with_hook if not path.startswith("sales_automation.")]
	timings = {"on": [], "off": []}
	direct = []
	for _ in range(rounds):
		for state, handlers in (("on", with_hook), ("off", without_hook)):
			hooks["on_submit"] = handlers
			sales_order = frappe.get_doc({"doctype": "Sales Order", **order_payload(env, 1)})
			sales_order.insert()
			started = time.perf_counter()
			sales_order.submit()
			timings[state].append(time.perf_counter() - started)
			frappe.db.commit()  # nosemgrep - the server and workers measured read what the benchmark commits
			if state == "off":
				started = time.perf_counter()
				assert engine.start_for_order(sales_order, trigger="Manual") is None
				direct.append(time.perf_counter() - started)
	hooks["on_submit"] = with_hook
	on, off = summary(timings["on"]), summary(timings["off"])
	return {
		"submit_with_hook": on,
		"submit_without_hook": off,
		"added_ms": round(on["median_ms"] - off["median_ms"], 2),
		"hook_ms": summary(direct)["median_ms"],
	}


def background(env, orders: int, workers: int) -> dict:
	"""(d) `orders` submitted orders run by `workers` RQ workers, first submit to last run done."""
	queue = queue_of(SUBMIT)  # Settings: Queue
	processes = [
		subprocess.Popen(
			[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", queue],
			cwd=os.path.abspath(frappe.local.sites_path),
			stdout=subprocess.DEVNULL,
			stderr=subprocess.DEVNULL,
		)
		for _ in range(workers)
	]
	try:
		names = []
		started = time.perf_counter()
		for idx in range(orders):
			# orders spread over the items, as a shop's are; one item for all would queue every
			# worker on the same stock row
			sales_order = frappe.get_doc(
				{"doctype": "Sales Order", **order_payload(env, 1, customer=BACKGROUND_CUSTOMER, first=idx)}
			)
			sales_order.insert()
			sales_order.submit()
			frappe.db.commit()  # nosemgrep - the server and workers measured read what the benchmark commits
			names.append(sales_order.name)
		submitted = time.perf_counter() - started
		deadline = time.monotonic() + max(600, orders * 3)
		while time.monotonic() < deadline:
			frappe.db.rollback()
			pending = frappe.db.count(
				"Sales Automation Run",
				{"sales_order": ["in", names], "status": ["in", ["Queued", "Running"]]},
			)
			if not pending:
				break
			time.sleep(0.5)
		elapsed = time.perf_counter() - started
	finally:
		for process in processes:
			process.terminate()
		for process in processes:
			process.wait(timeout=30)
	Run = frappe.qb.DocType("Sales Automation Run")
	statuses = (
		frappe.qb.from_(Run)
		.select(Run.status, Count(Run.name))
		.where(Run.sales_order.isin(names or [""]))
		.groupby(Run.status)
		.run()
	)
	return {
		"orders": orders,
		"workers": workers,
		"seconds": round(elapsed, 2),
		"submit_seconds": round(submitted, 2),
		"orders_per_minute": round(orders / elapsed * 60, 1),
		"runs_by_status": dict(statuses),
		"duplicates": duplicates(names),
	}


def same_order_race(server, http, env, orders: int, callers: int) -> dict:
	"""(g) `callers` run_sales_cycle calls at once on each of `orders` existing submitted orders."""
	names, codes = [], {}
	url = f"{server.url}/api/method/sales_automation.api.run_sales_cycle"
	with ThreadPoolExecutor(max_workers=callers) as pool:
		for idx in range(orders):
			sales_order = frappe.get_doc({"doctype": "Sales Order", **order_payload(env, 1, first=idx)})
			sales_order.flags.skip_sales_automation = True
			sales_order.insert()
			sales_order.submit()
			frappe.db.commit()  # nosemgrep - the server and workers measured read what the benchmark commits
			names.append(sales_order.name)
			body = {"sales_order": sales_order.name}
			for response in pool.map(lambda _: http.post(url, json=body), range(callers)):
				codes[response.status_code] = codes.get(response.status_code, 0) + 1
	frappe.db.rollback()
	return {
		"orders": orders,
		"callers": callers,
		"calls": orders * callers,
		"answers_by_status_code": codes,
		"duplicates": duplicates(names),
	}


def duplicates(sales_order_names: list[str]) -> int:
	"""Documents beyond one DN, one SI and one PE per order."""
	names = sales_order_names or [""]
	counts = []
	for child, field, parenttype in (
		("Delivery Note Item", "against_sales_order", "Delivery Note"),
		("Sales Invoice Item", "sales_order", "Sales Invoice"),
	):
		row = frappe.qb.DocType(child)
		counts += documents_per(row, row[field], names, row.parenttype == parenttype)
	invoices = frappe.get_all(
		"Sales Invoice Item",
		filters={"sales_order": ["in", names], "docstatus": ["<", 2]},
		pluck="parent",
		distinct=True,
	)
	reference = frappe.qb.DocType("Payment Entry Reference")
	counts += documents_per(
		reference, reference.reference_name, invoices or [""], reference.parenttype.isnotnull()
	)
	return sum(documents - 1 for documents in counts if documents > 1)


def documents_per(table, link, values: list[str], condition) -> list[int]:
	"""How many distinct live parent documents each linked value has (aggregates through frappe.qb)."""
	return [
		documents
		for _link, documents in frappe.qb.from_(table)
		.select(link, Count(table.parent).distinct())
		.where(link.isin(values) & (table.docstatus < 2) & condition)
		.groupby(link)
		.run()
	]
