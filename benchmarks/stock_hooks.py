"""What the continuation's doc events cost a stock transaction that no order waits for (issue 28), side
by side on one site: a Material Receipt of one item, inserted, submitted and committed, with the app's
doc events in place (the Stock Ledger Entry's on_submit, then the after-commit check) and with them
removed, in alternating rounds so the machine's drift hits both alike. Prints the medians, their ratio
and the noise band (the spread of the per-round ratios, 10th to 90th percentile). Not a test: timings
belong here.

	cd ~/.sales_automation/frappe-bench/sites
	../env/bin/python /path/to/benchmarks/stock_hooks.py --site sales-automation.localhost [--rounds 200]

The site needs a company and a stock item (setup.demo.setup_demo); each receipt adds 1 unit of stock.
"""

import argparse
import json
import os
import statistics
import time

import frappe

DOCTYPES = ("Stock Ledger Entry",)


def receipt(item_code: str, warehouse: str, company: str) -> float:
	started = time.perf_counter()
	entry = frappe.get_doc(
		{
			"doctype": "Stock Entry",
			"stock_entry_type": "Material Receipt",
			"company": company,
			"items": [{"item_code": item_code, "qty": 1, "t_warehouse": warehouse, "basic_rate": 10}],
		}
	)
	entry.insert()
	entry.submit()
	frappe.db.commit()
	return (time.perf_counter() - started) * 1000


def percentile(values: list[float], share: float) -> float:
	ordered = sorted(values)
	return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main():
	parser = argparse.ArgumentParser()
	parser.add_argument("--site", required=True)
	parser.add_argument("--rounds", type=int, default=200)
	args = parser.parse_args()
	frappe.init(args.site, sites_path=os.getcwd())
	frappe.connect()
	frappe.set_user("Administrator")
	from sales_automation.setup.demo import DEMO_COMPANY, ensure_item

	company = DEMO_COMPANY
	warehouse = frappe.db.get_value("Warehouse", {"company": company, "is_group": 0}, "name")
	# an item of its own, which no order waits for (what the issue asks to measure)
	item_code = ensure_item("_SA Bench Stock Item")
	frappe.db.commit()
	hooks = frappe.get_doc_hooks()
	saved = {doctype: dict(hooks.get(doctype, {})) for doctype in DOCTYPES}

	def set_hooks(on: bool):
		for doctype in DOCTYPES:
			events = hooks.setdefault(doctype, {})
			for event, handlers in saved[doctype].items():
				events[event] = (
					handlers
					if on
					else [path for path in handlers if not path.startswith("sales_automation.")]
				)

	for _warm_up in range(10):
		receipt(item_code, warehouse, company)
	timings = {"on": [], "off": []}
	for round_ in range(args.rounds):
		order = ("on", "off") if round_ % 2 == 0 else ("off", "on")
		for state in order:
			set_hooks(state == "on")
			timings[state].append(receipt(item_code, warehouse, company))
	set_hooks(True)
	# the hooks' own work, timed directly: the event's bookkeeping and the after-commit query
	from sales_automation import continuation

	direct = []
	entry = frappe._dict(actual_qty=1, voucher_type="Stock Entry", item_code=item_code)
	for _round in range(args.rounds):
		started = time.perf_counter()
		continuation.on_stock_ledger_entry(entry)
		frappe.db.commit()  # runs queue_if_waiting
		direct.append((time.perf_counter() - started) * 1000)
	ratios = [on / off for on, off in zip(timings["on"], timings["off"], strict=True)]
	result = {
		"rounds": args.rounds,
		"with_hooks_median_ms": round(statistics.median(timings["on"]), 2),
		"without_hooks_median_ms": round(statistics.median(timings["off"]), 2),
		"ratio_of_medians": round(statistics.median(timings["on"]) / statistics.median(timings["off"]), 3),
		"per_round_ratio_p10_p90": [round(percentile(ratios, 0.1), 3), round(percentile(ratios, 0.9), 3)],
		"hooks_alone_median_ms": round(statistics.median(direct), 3),
	}
	out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
	os.makedirs(out_dir, exist_ok=True)
	with open(os.path.join(out_dir, "stock_hooks.json"), "w") as out:
		json.dump(result, out, indent=1)
	print(json.dumps(result, indent=1))
	frappe.destroy()


if __name__ == "__main__":
	main()
