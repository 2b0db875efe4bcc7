"""Small factories for tests: one test company with bank and cash, stocked items, orders."""

import os
import subprocess
import sys
import time

import frappe
from frappe.query_builder.functions import Sum
from frappe.utils import add_days, flt, nowdate

from sales_automation.benchmarks.variants import statements_so_far
from sales_automation.setup.demo import (
	default_warehouse,
	ensure_account,
	ensure_company,
	ensure_customer,
	ensure_item,
	ensure_mode_of_payment,
	leaf_record,
	receive_stock,
)

COMPANY = "_SA Test Company"
ABBR = "_SAT"


def test_env() -> frappe._dict:
	"""The test company and its accounts, warehouse, customer and modes of payment (created once)."""
	ensure_company(COMPANY, ABBR)
	env = frappe._dict(
		company=COMPANY,
		abbr=ABBR,
		warehouse=default_warehouse(COMPANY),
		customer=ensure_customer("_SA Test Customer"),
		cash_account=f"Cash - {ABBR}",
		bank_account=f"Main Bank - {ABBR}",
	)
	env.cash_mode = ensure_mode_of_payment("_SA Cash", COMPANY, env.cash_account, "Cash")
	env.bank_mode = ensure_mode_of_payment("_SA Wire", COMPANY, env.bank_account, "Bank")
	return env


def make_item(
	stock_qty: float = 0, is_stock_item: int = 1, valuation_rate: float = 50, prefix: str = "_SA Item"
) -> str:
	"""A new item with a unique code and `stock_qty` on hand in the test warehouse."""
	item_code = f"{prefix} {frappe.generate_hash(length=8)}"
	ensure_item(item_code, is_stock_item=is_stock_item, valuation_rate=valuation_rate)
	if stock_qty:
		env = test_env()
		receive_stock(item_code, env.warehouse, stock_qty, env.company, rate=valuation_rate)
	return item_code


def make_sales_order(items: list[dict], submit: bool = True, automate: bool = True, **fields):
	"""A Sales Order of the test company; `items` rows need item_code, qty and rate.

	automate=False submits it as orders from before the app were: the submit hook starts no run."""
	env = test_env()
	sales_order = frappe.get_doc(
		{
			"doctype": "Sales Order",
			"company": env.company,
			"customer": fields.pop("customer", env.customer),
			"transaction_date": nowdate(),
			"delivery_date": add_days(nowdate(), 5),
			"set_warehouse": env.warehouse,
			"items": [{"warehouse": env.warehouse, **row} for row in items],
			**fields,
		}
	)
	sales_order.insert()
	sales_order.flags.skip_sales_automation = not automate
	if submit:
		sales_order.submit()
	return sales_order


def gl_totals(voucher_names: list[str]) -> tuple[float, float]:
	"""Sum of debit and credit over the live GL entries of the given vouchers."""
	entry = frappe.qb.DocType("GL Entry")
	debit, credit = (
		frappe.qb.from_(entry)
		.select(Sum(entry.debit), Sum(entry.credit))
		.where(entry.voucher_no.isin(voucher_names or [""]) & (entry.is_cancelled == 0))
		.run()[0]
	)
	return flt(debit, 2), flt(credit, 2)


def count_documents() -> dict:
	"""Row counts of every table a sales cycle writes to, to compare before and after."""
	return {
		doctype: frappe.db.count(doctype)
		for doctype in (
			"Sales Order",
			"Delivery Note",
			"Sales Invoice",
			"Payment Entry",
			"GL Entry",
			"Stock Ledger Entry",
		)
	}


def ensure_ledger_account(
	account_name: str, parent: str, account_type: str | None = None, currency=None
) -> str:
	return ensure_account(COMPANY, account_name, parent, account_type=account_type, currency=currency)


def make_customer(prefix: str = "_SA Customer", **fields) -> str:
	"""A new customer with a unique name, so the rules of one test never match another's orders."""
	name = f"{prefix} {frappe.generate_hash(length=8)}"
	frappe.get_doc(
		{
			"doctype": "Customer",
			"customer_name": name,
			"customer_group": leaf_record("Customer Group"),
			"territory": leaf_record("Territory"),
			**fields,
		}
	).insert()
	return name


def make_mode_of_payment(prefix: str, account: str | None = None) -> str:
	"""A new Cash mode of payment, with `account` as its default for the test company when given."""
	mode = frappe.get_doc(
		{
			"doctype": "Mode of Payment",
			"mode_of_payment": f"{prefix} {frappe.generate_hash(length=6)}",
			"type": "Cash",
		}
	)
	if account:
		mode.append("accounts", {"company": COMPANY, "default_account": account})
	return mode.insert().name


def make_rule(customer: str, **fields):
	"""An enabled rule for one customer: deliver, invoice from the Delivery Note, pay cash, same transaction."""
	env = test_env()
	rule = frappe.get_doc(
		{
			"doctype": "Sales Automation Rule",
			"rule_name": f"_SA Rule {frappe.generate_hash(length=8)}",
			"enabled": 1,
			"priority": 100,
			"order_company": env.company,
			"order_customer": customer,
			"execution_mode": "Same Transaction",
			"create_delivery_note": 1,
			"submit_delivery_note": 1,
			"shortage_policy": "Fail",
			"create_sales_invoice": 1,
			"invoice_source": "Delivery Note",
			"submit_sales_invoice": 1,
			"create_payment_entry": 1,
			"payment_against": "Sales Invoice",
			"mode_of_payment": env.cash_mode,
			"reference_no_pattern": "{sales_order}",
			"submit_payment_entry": 1,
			**fields,
		}
	)
	rule.insert()
	return rule


def order_with_rule(qty: float = 1, rate: float = 10, stock: float | None = None, **rule_fields):
	"""A submitted order of one new item (`stock` on hand, by default `qty`) for a new customer with a
	rule of its own (make_rule with `rule_fields`), so that rule is the one it follows."""
	customer = make_customer()
	make_rule(customer, **rule_fields)
	item_code = make_item(stock_qty=qty if stock is None else stock)
	return make_sales_order([{"item_code": item_code, "qty": qty, "rate": rate}], customer=customer)


def run_of(sales_order_name: str):
	"""The newest Sales Automation Run of an order, or None."""
	name = frappe.db.get_value(
		"Sales Automation Run", {"sales_order": sales_order_name}, "name", order_by="creation desc"
	)
	return frappe.get_doc("Sales Automation Run", name) if name else None


def documents_of(sales_order_name: str) -> dict:
	"""Names of the non-cancelled DN, SI and PE linked to an order."""

	def parents(child, field, parenttype):
		return sorted(
			set(
				frappe.get_all(
					child,
					filters={field: sales_order_name, "docstatus": ["<", 2], "parenttype": parenttype},
					pluck="parent",
				)
			)
		)

	invoices = parents("Sales Invoice Item", "sales_order", "Sales Invoice")
	payments = set()
	for reference_name in [sales_order_name, *invoices]:
		payments.update(
			frappe.get_all(
				"Payment Entry Reference",
				filters={
					"reference_name": reference_name,
					"docstatus": ["<", 2],
					"parenttype": "Payment Entry",
				},
				pluck="parent",
			)
		)
	return {
		"Delivery Note": parents("Delivery Note Item", "against_sales_order", "Delivery Note"),
		"Sales Invoice": invoices,
		"Payment Entry": sorted(payments),
	}


def frozen_account(account_name: str, parent: str, account_type: str) -> str:
	"""A ledger account that refuses postings (frozen, and no role may post to frozen accounts)."""
	name = ensure_account(COMPANY, account_name, parent, account_type=account_type)
	frappe.db.set_value("Account", name, "freeze_account", "Yes")
	frappe.db.set_single_value("Accounts Settings", "frozen_accounts_modifier", None)
	return name


def order_payload(customer: str, item_code: str, qty: float = 1, rate: float = 100, **fields) -> dict:
	"""A Sales Order as an external system sends it: ERPNext's own field names."""
	env = test_env()
	return {
		"customer": customer,
		"company": env.company,
		"delivery_date": add_days(nowdate(), 3),
		"items": [{"item_code": item_code, "qty": qty, "rate": rate, "warehouse": env.warehouse}],
		**fields,
	}


def work_off_queue(queue: str = "default") -> subprocess.CompletedProcess:
	"""A real RQ worker of this bench, in burst mode: it runs what waits in `queue`, then exits.

	The bench's queues are shared by its sites, so it may also run other sites' jobs (harmless)."""
	return subprocess.run(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", queue, "--burst"],
		cwd=os.path.abspath(frappe.local.sites_path),
		capture_output=True,
		text=True,
		timeout=300,
	)


def wait_for_run_to_end(run_name: str, timeout: float = 60) -> str:
	"""The run's status once it is neither Queued nor Running (another worker of the bench may have
	taken its job), or as it stands after `timeout` seconds."""
	deadline = time.monotonic() + timeout
	while True:
		frappe.db.rollback()  # a fresh snapshot: see what the worker committed
		status = frappe.db.get_value("Sales Automation Run", run_name, "status")
		if status not in ("Queued", "Running") or time.monotonic() > deadline:
			return status
		time.sleep(0.5)


def serve_site(test_class, user: str, **options):
	"""A live server of this site for a test class, stopped when the class is done, and an API session
	as `user` (a Sales user with a token): (server, session)."""
	from sales_automation.live_server import LiveServer
	from sales_automation.setup.demo import SALES_ROLES, ensure_api_user

	api_key, api_secret = ensure_api_user(user, SALES_ROLES)
	frappe.db.commit()  # the server sees only committed data
	server = test_class.enterClassContext(LiveServer(**options))
	return server, server.session(api_key, api_secret)


def statements_of(work) -> int:
	"""The statements this connection sends while `work` runs."""
	before = statements_so_far("SESSION")
	work()
	return statements_so_far("SESSION") - before - 1  # less the second count's own


def add_custom_field(test, dt: str, fieldname: str, fieldtype: str, insert_after: str):
	"""A Custom Field on `dt`, deleted when `test` ends if the test has not deleted it."""
	custom_field = frappe.get_doc(
		{
			"doctype": "Custom Field",
			"dt": dt,
			"fieldname": fieldname,
			"label": frappe.unscrub(fieldname),
			"fieldtype": fieldtype,
			"insert_after": insert_after,
		}
	).insert(ignore_permissions=True)
	test.addCleanup(lambda: frappe.db.exists("Custom Field", custom_field.name) and custom_field.delete())
	return custom_field
