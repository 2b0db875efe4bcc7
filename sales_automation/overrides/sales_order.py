import frappe

from sales_automation import engine, locks
from sales_automation.constants import SUBMIT


def on_submit(doc, method=None):
	if frappe.flags.in_import or frappe.flags.in_migrate or doc.flags.skip_sales_automation:
		return
	engine.start_for_order(doc, trigger=SUBMIT)


def on_cancel(doc, method=None):
	# not while a request or job acts on the order (no wait: this transaction holds the order's row)
	locks.take(doc.name)
	engine.cancel_runs_of_order(doc.name)
