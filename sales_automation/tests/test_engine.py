"""The rule-driven cycle on Sales Order submit, asserted on documents, ledgers and stock."""

from unittest.mock import patch

from rq.job import JobStatus

import frappe
from frappe.utils import add_days, cint, flt, nowdate
from frappe.utils.background_jobs import get_job

from sales_automation import engine, locks
from sales_automation.api.runs import resume_run
from sales_automation.exceptions import StepFailedError
from sales_automation.setup.demo import ensure_account, ensure_api_user, receive_stock
from sales_automation.tests.base import AutomationTestCase
from sales_automation.tests.factories import (
	COMPANY,
	documents_of,
	gl_totals,
	make_customer,
	make_item,
	make_mode_of_payment,
	make_rule,
	make_sales_order,
	run_of,
)


class EngineTestCase(AutomationTestCase):
	def tearDown(self):
		frappe.set_user("Administrator")

	def order(self, customer, items, **fields):
		return make_sales_order(items, customer=customer, **fields)

	def stock_qty(self, item_code):
		return flt(
			frappe.db.get_value(
				"Bin", {"item_code": item_code, "warehouse": self.env.warehouse}, "actual_qty"
			)
		)

	def assert_gl_balanced(self, names):
		debit, credit = gl_totals(names)
		self.assertGreater(debit, 0)
		self.assertEqual(debit, credit)

	def assert_steps(self, run, expected: dict):
		self.assertEqual({row.step: row.status for row in run.steps}, expected)


class TestExecutionModes(EngineTestCase):
	def test_same_transaction_rule_delivers_invoices_and_pays_on_submit(self):
		customer = make_customer()
		rule = make_rule(customer)
		item_code = make_item(stock_qty=10)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 4, "rate": 25}])

		docs = documents_of(sales_order.name)
		self.assertEqual([len(docs[d]) for d in docs], [1, 1, 1])
		sales_order.reload()
		self.assertEqual(sales_order.status, "Completed")
		self.assertEqual(frappe.db.get_value("Delivery Note", docs["Delivery Note"][0], "docstatus"), 1)
		self.assertEqual(frappe.db.get_value("Sales Invoice", docs["Sales Invoice"][0], "status"), "Paid")
		self.assertEqual(self.stock_qty(item_code), 6)
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Completed")
		self.assertEqual(run.rule, rule.name)
		self.assertEqual(str(run.rule_version), str(rule.modified))
		self.assertEqual(run.execution_mode, "Same Transaction")
		self.assertEqual(run.delivery_note, docs["Delivery Note"][0])
		self.assertEqual(run.sales_invoice, docs["Sales Invoice"][0])
		self.assertEqual(run.payment_entry, docs["Payment Entry"][0])
		self.assert_steps(
			run, {"Delivery Note": "Completed", "Sales Invoice": "Completed", "Payment Entry": "Completed"}
		)
		self.assert_gl_balanced([*docs["Delivery Note"], *docs["Sales Invoice"], *docs["Payment Entry"]])

	def test_same_transaction_failure_refuses_the_submit_naming_the_step(self):
		customer = make_customer()
		make_rule(customer)
		item_code = make_item(stock_qty=1)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 5, "rate": 10}], submit=False)
		frappe.db.savepoint("before_submit")
		with self.assertRaises(StepFailedError) as caught:
			sales_order.submit()
		frappe.db.rollback(save_point="before_submit")
		self.assertIn("Delivery Note", str(caught.exception))
		self.assertIn("Not enough stock", str(caught.exception))
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "docstatus"), 0)
		self.assertEqual(
			documents_of(sales_order.name), {"Delivery Note": [], "Sales Invoice": [], "Payment Entry": []}
		)
		self.assertIsNone(run_of(sales_order.name))
		self.assertEqual(self.stock_qty(item_code), 1)

	def test_background_rule_queues_the_run_and_the_job_completes_it(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=5)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 2, "rate": 30}])

		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Queued")
		self.assertEqual(run.execution_mode, "Background")
		self.assertEqual(documents_of(sales_order.name)["Delivery Note"], [])

		engine.process_run(run.name, drain_seconds=0)
		run.reload()
		self.assertEqual(run.status, "Completed")
		self.assertEqual(run.attempts, 1)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")
		self.assertEqual(frappe.db.get_value("Sales Invoice", run.sales_invoice, "status"), "Paid")

	def test_running_a_completed_cycle_again_creates_nothing(self):
		customer = make_customer()
		rule = make_rule(customer)
		item_code = make_item(stock_qty=5)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 2, "rate": 30}])
		before = documents_of(sales_order.name)

		run = engine.create_run(sales_order, rule, "again", "Manual", "Background")
		engine.execute(run, engine.Mode.WITH_RETRIES)

		self.assertEqual(documents_of(sales_order.name), before)
		self.assert_steps(
			run, {"Delivery Note": "Skipped", "Sales Invoice": "Skipped", "Payment Entry": "Skipped"}
		)
		self.assertEqual(run.status, "Completed")


class TestInvoiceSourcesAndDrafts(EngineTestCase):
	def test_invoice_from_sales_order_without_delivery(self):
		customer = make_customer()
		make_rule(customer, create_delivery_note=0, invoice_source="Sales Order")
		item_code = make_item(stock_qty=5)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 2, "rate": 40}])

		docs = documents_of(sales_order.name)
		self.assertEqual(docs["Delivery Note"], [])
		sales_invoice = frappe.get_doc("Sales Invoice", docs["Sales Invoice"][0])
		self.assertEqual(sales_invoice.update_stock, 0)
		self.assertEqual(sales_invoice.status, "Paid")
		self.assertEqual(flt(frappe.db.get_value("Sales Order", sales_order.name, "per_billed")), 100)
		self.assertEqual(flt(frappe.db.get_value("Sales Order", sales_order.name, "per_delivered")), 0)
		self.assertEqual(self.stock_qty(item_code), 5)
		self.assertEqual(run_of(sales_order.name).status, "Completed")

	def test_invoice_that_updates_stock_delivers_without_a_delivery_note(self):
		customer = make_customer()
		make_rule(customer, create_delivery_note=0, invoice_source="Sales Order (Update Stock)")
		item_code = make_item(stock_qty=5)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 3, "rate": 40}])

		docs = documents_of(sales_order.name)
		self.assertEqual(docs["Delivery Note"], [])
		sales_invoice = frappe.get_doc("Sales Invoice", docs["Sales Invoice"][0])
		self.assertEqual(sales_invoice.update_stock, 1)
		self.assertEqual(sales_invoice.status, "Paid")
		self.assertEqual(self.stock_qty(item_code), 2)
		self.assertTrue(
			frappe.db.exists("Stock Ledger Entry", {"voucher_no": sales_invoice.name, "actual_qty": -3})
		)
		sales_order.reload()
		self.assertEqual(sales_order.status, "Completed")
		self.assert_gl_balanced([sales_invoice.name, *docs["Payment Entry"]])

	def test_drafts_are_left_as_drafts(self):
		item_code = make_item(stock_qty=5)

		customer = make_customer()
		make_rule(customer, submit_delivery_note=0, create_sales_invoice=0, create_payment_entry=0)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 40}])
		delivery_note = documents_of(sales_order.name)["Delivery Note"][0]
		self.assertEqual(frappe.db.get_value("Delivery Note", delivery_note, "docstatus"), 0)
		self.assertEqual(self.stock_qty(item_code), 5)

		customer = make_customer()
		make_rule(
			customer,
			create_delivery_note=0,
			invoice_source="Sales Order",
			submit_sales_invoice=0,
			create_payment_entry=0,
		)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 40}])
		sales_invoice = documents_of(sales_order.name)["Sales Invoice"][0]
		self.assertEqual(frappe.db.get_value("Sales Invoice", sales_invoice, "docstatus"), 0)

		customer = make_customer()
		make_rule(customer, submit_payment_entry=0)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 40}])
		docs = documents_of(sales_order.name)
		self.assertEqual(frappe.db.get_value("Payment Entry", docs["Payment Entry"][0], "docstatus"), 0)
		self.assertEqual(frappe.db.get_value("Sales Invoice", docs["Sales Invoice"][0], "status"), "Unpaid")

	def test_an_existing_draft_is_submitted_not_duplicated(self):
		from erpnext.selling.doctype.sales_order.sales_order import make_delivery_note

		customer = make_customer()
		item_code = make_item(stock_qty=5)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 2, "rate": 40}])
		draft = make_delivery_note(sales_order.name)
		draft.insert()
		rule = make_rule(customer, create_payment_entry=0)

		run = engine.start_for_order(sales_order, trigger="Manual")

		self.assertEqual(run.status, "Completed")
		self.assertEqual(documents_of(sales_order.name)["Delivery Note"], [draft.name])
		self.assertEqual(frappe.db.get_value("Delivery Note", draft.name, "docstatus"), 1)
		self.assertEqual(run.rule, rule.name)


class TestStockShortage(EngineTestCase):
	def test_policy_fail_records_the_failure_and_creates_nothing(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=2)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 5, "rate": 10}])
		run = run_of(sales_order.name)
		engine.process_run(run.name, drain_seconds=0)
		run.reload()

		self.assertEqual(run.status, "Queued")  # to be retried with backoff
		self.assertTrue(run.next_retry_at)
		self.assertIn("Not enough stock", run.error)
		self.assertEqual(run.steps[0].status, "Failed")
		self.assertIn("Traceback", run.steps[0].traceback)
		self.assertEqual(
			documents_of(sales_order.name), {"Delivery Note": [], "Sales Invoice": [], "Payment Entry": []}
		)
		self.assertEqual(self.stock_qty(item_code), 2)

	def test_policy_deliver_available_leaves_the_rest_open(self):
		customer = make_customer()
		make_rule(customer, shortage_policy="Deliver Available")
		item_code = make_item(stock_qty=3)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 5, "rate": 10}])

		docs = documents_of(sales_order.name)
		delivery_note = frappe.get_doc("Delivery Note", docs["Delivery Note"][0])
		self.assertEqual(delivery_note.items[0].qty, 3)
		self.assertEqual(self.stock_qty(item_code), 0)
		sales_order.reload()
		self.assertEqual(flt(sales_order.per_delivered), 60)
		self.assertEqual(flt(sales_order.per_billed), 60)  # billed as delivered, from the Delivery Note
		self.assertEqual(sales_order.status, "To Deliver and Bill")
		sales_invoice = frappe.get_doc("Sales Invoice", docs["Sales Invoice"][0])
		self.assertEqual(sales_invoice.total_qty, 3)
		self.assertEqual(sales_invoice.status, "Paid")
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Partially Completed")
		self.assertIn("the rest stays open", run.steps[0].message)

	def test_deliver_available_shares_one_items_stock_across_its_rows(self):
		customer = make_customer()
		make_rule(customer, shortage_policy="Deliver Available")
		short_item, stocked_item = make_item(stock_qty=5), make_item(stock_qty=10)
		rows = [
			{"item_code": short_item, "qty": 3, "rate": 10},
			{"item_code": stocked_item, "qty": 2, "rate": 10},
			{"item_code": short_item, "qty": 4, "rate": 10},
		]
		sales_order = self.order(customer, rows)

		delivery_note = frappe.get_doc("Delivery Note", documents_of(sales_order.name)["Delivery Note"][0])
		self.assertEqual(
			[(row.item_code, row.qty) for row in delivery_note.items],
			[(short_item, 3), (stocked_item, 2), (short_item, 2)],
		)
		self.assertEqual((self.stock_qty(short_item), self.stock_qty(stocked_item)), (0, 8))
		self.assertEqual(run_of(sales_order.name).status, "Partially Completed")

	def test_policy_skip_delivery_delivers_nothing(self):
		customer = make_customer()
		make_rule(customer, shortage_policy="Skip Delivery")
		item_code = make_item(stock_qty=1)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 5, "rate": 10}])

		self.assertEqual(
			documents_of(sales_order.name), {"Delivery Note": [], "Sales Invoice": [], "Payment Entry": []}
		)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "docstatus"), 1)
		self.assertEqual(self.stock_qty(item_code), 1)
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Partially Completed")
		self.assert_steps(
			run, {"Delivery Note": "Skipped", "Sales Invoice": "Skipped", "Payment Entry": "Skipped"}
		)


class TestOrderShapes(EngineTestCase):
	def test_service_only_order_is_invoiced_and_paid_without_delivery(self):
		customer = make_customer()
		make_rule(customer, invoice_source="Sales Order")
		service = make_item(is_stock_item=0)
		sales_order = self.order(customer, [{"item_code": service, "qty": 2, "rate": 150}])

		docs = documents_of(sales_order.name)
		self.assertEqual(docs["Delivery Note"], [])
		self.assertEqual(frappe.db.get_value("Sales Invoice", docs["Sales Invoice"][0], "status"), "Paid")
		run = run_of(sales_order.name)
		self.assertEqual(run.status, "Completed")
		self.assertEqual(run.steps[0].status, "Skipped")

	def test_mixed_stock_and_service_order_closes_fully(self):
		customer = make_customer()
		make_rule(customer)
		stock_item = make_item(stock_qty=4)
		service = make_item(is_stock_item=0)
		sales_order = self.order(
			customer,
			[{"item_code": stock_item, "qty": 4, "rate": 10}, {"item_code": service, "qty": 1, "rate": 60}],
		)

		docs = documents_of(sales_order.name)
		sales_invoice = frappe.get_doc("Sales Invoice", docs["Sales Invoice"][0])
		self.assertEqual(sales_invoice.grand_total, 100)
		self.assertEqual(sales_invoice.status, "Paid")
		self.assertEqual(self.stock_qty(stock_item), 0)
		sales_order.reload()
		self.assertEqual(flt(sales_order.per_billed), 100)
		self.assertEqual(flt(sales_order.per_delivered), 100)
		self.assertEqual(run_of(sales_order.name).status, "Completed")

	def test_sales_taxes_template_flows_to_invoice_and_payment(self):
		customer = make_customer()
		make_rule(customer)
		tax_account = ensure_account(COMPANY, "_SA Sales Tax", "Duties and Taxes", account_type="Tax")
		template_name = "_SA Tax 10"
		if not frappe.db.exists("Sales Taxes and Charges Template", f"{template_name} - {self.env.abbr}"):
			frappe.get_doc(
				{
					"doctype": "Sales Taxes and Charges Template",
					"title": template_name,
					"company": COMPANY,
					"taxes": [
						{
							"charge_type": "On Net Total",
							"account_head": tax_account,
							"rate": 10,
							"description": "Tax 10%",
						}
					],
				}
			).insert()
		from erpnext.controllers.accounts_controller import get_taxes_and_charges

		template = f"{template_name} - {self.env.abbr}"
		item_code = make_item(stock_qty=5)
		sales_order = self.order(
			customer,
			[{"item_code": item_code, "qty": 2, "rate": 50}],
			taxes_and_charges=template,
			taxes=get_taxes_and_charges("Sales Taxes and Charges Template", template),
		)

		docs = documents_of(sales_order.name)
		sales_invoice = frappe.get_doc("Sales Invoice", docs["Sales Invoice"][0])
		self.assertEqual(sales_invoice.total_taxes_and_charges, 10)
		self.assertEqual(sales_invoice.grand_total, 110)
		self.assertEqual(sales_invoice.status, "Paid")
		self.assertEqual(frappe.db.get_value("Payment Entry", docs["Payment Entry"][0], "paid_amount"), 110)
		self.assertEqual(
			flt(
				frappe.db.get_value(
					"GL Entry",
					{"voucher_no": sales_invoice.name, "account": tax_account, "is_cancelled": 0},
					"credit",
				)
			),
			10,
		)
		self.assert_gl_balanced([sales_invoice.name, *docs["Payment Entry"]])

	def test_payment_terms_schedule_is_paid_in_full(self):
		customer = make_customer()
		make_rule(customer)
		template = "_SA 50-50"
		if not frappe.db.exists("Payment Terms Template", template):
			frappe.get_doc(
				{
					"doctype": "Payment Terms Template",
					"template_name": template,
					"terms": [
						{
							"invoice_portion": 50,
							"credit_days": 0,
							"due_date_based_on": "Day(s) after invoice date",
						},
						{
							"invoice_portion": 50,
							"credit_days": 30,
							"due_date_based_on": "Day(s) after invoice date",
						},
					],
				}
			).insert()
		item_code = make_item(stock_qty=5)
		sales_order = self.order(
			customer, [{"item_code": item_code, "qty": 2, "rate": 50}], payment_terms_template=template
		)
		self.assertEqual(len(sales_order.payment_schedule), 2)

		docs = documents_of(sales_order.name)
		sales_invoice = frappe.get_doc("Sales Invoice", docs["Sales Invoice"][0])
		self.assertEqual(len(sales_invoice.payment_schedule), 2)
		self.assertEqual(sales_invoice.status, "Paid")
		self.assertEqual(sales_invoice.outstanding_amount, 0)


class TestPayments(EngineTestCase):
	def test_cash_mode_pays_into_the_cash_account(self):
		customer = make_customer()
		make_rule(customer, mode_of_payment=self.env.cash_mode)
		sales_order = self.order(customer, [{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 80}])
		payment_entry = frappe.get_doc("Payment Entry", documents_of(sales_order.name)["Payment Entry"][0])
		self.assertEqual(payment_entry.paid_to, self.env.cash_account)
		self.assertEqual(payment_entry.mode_of_payment, self.env.cash_mode)
		self.assertEqual(payment_entry.paid_amount, 80)

	def test_bank_mode_fills_the_reference_number_from_the_pattern(self):
		customer = make_customer()
		make_rule(
			customer, mode_of_payment=self.env.bank_mode, reference_no_pattern="SO/{sales_order}/{po_no}"
		)
		sales_order = self.order(
			customer, [{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 80}], po_no="PO-77"
		)
		payment_entry = frappe.get_doc("Payment Entry", documents_of(sales_order.name)["Payment Entry"][0])
		self.assertEqual(payment_entry.paid_to, self.env.bank_account)
		self.assertEqual(payment_entry.reference_no, f"SO/{sales_order.name}/PO-77")
		self.assertEqual(str(payment_entry.reference_date), nowdate())
		self.assertEqual(payment_entry.docstatus, 1)

	def test_advance_payment_is_allocated_by_the_invoice(self):
		customer = make_customer()
		make_rule(customer, payment_against="Sales Order (Advance)")
		sales_order = self.order(customer, [{"item_code": make_item(stock_qty=2), "qty": 2, "rate": 45}])

		run = run_of(sales_order.name)
		self.assertEqual([row.step for row in run.steps], ["Payment Entry", "Delivery Note", "Sales Invoice"])
		self.assertEqual(run.status, "Completed")
		sales_order.reload()
		self.assertEqual(flt(sales_order.advance_paid), 90)
		sales_invoice = frappe.get_doc("Sales Invoice", run.sales_invoice)
		self.assertEqual(sales_invoice.status, "Paid")
		self.assertEqual(sum(flt(row.allocated_amount) for row in sales_invoice.advances), 90)
		payment_entry = frappe.get_doc("Payment Entry", run.payment_entry)
		self.assertEqual(flt(payment_entry.unallocated_amount), 0)
		self.assertEqual(sales_order.status, "Completed")

	def test_customer_billed_in_another_currency_is_paid_with_exchange_rates(self):
		if not frappe.db.exists(
			"Currency Exchange", {"from_currency": "EUR", "to_currency": "USD", "date": nowdate()}
		):
			frappe.get_doc(
				{
					"doctype": "Currency Exchange",
					"date": nowdate(),
					"from_currency": "EUR",
					"to_currency": "USD",
					"exchange_rate": 1.25,
					"for_selling": 1,
					"for_buying": 1,
				}
			).insert()
		frappe.db.set_value("Currency", "EUR", "enabled", 1)
		# a customer billed in EUR needs a receivable account in EUR, as ERPNext requires
		receivable = ensure_account(COMPANY, "_SA Debtors EUR", "Accounts Receivable", "Receivable", "EUR")
		customer = make_customer(
			default_currency="EUR", accounts=[{"company": COMPANY, "account": receivable}]
		)
		make_rule(customer)
		sales_order = self.order(
			customer,
			[{"item_code": make_item(stock_qty=2), "qty": 2, "rate": 100}],
			currency="EUR",
			conversion_rate=1.25,
			selling_price_list="Standard Selling",
		)

		docs = documents_of(sales_order.name)
		sales_invoice = frappe.get_doc("Sales Invoice", docs["Sales Invoice"][0])
		self.assertEqual(sales_invoice.currency, "EUR")
		self.assertEqual(sales_invoice.conversion_rate, 1.25)
		self.assertEqual(sales_invoice.grand_total, 200)
		self.assertEqual(sales_invoice.base_grand_total, 250)
		self.assertEqual(sales_invoice.status, "Paid")
		payment_entry = frappe.get_doc("Payment Entry", docs["Payment Entry"][0])
		self.assertEqual(payment_entry.paid_from, receivable)
		self.assertEqual(payment_entry.paid_amount, 200)  # in EUR, the receivable's currency
		self.assertEqual(payment_entry.received_amount, 250)  # in USD, into the cash account
		self.assertEqual(payment_entry.source_exchange_rate, 1.25)
		self.assert_gl_balanced([sales_invoice.name, payment_entry.name])


class TestRuleMatching(EngineTestCase):
	def test_highest_priority_matching_rule_wins(self):
		customer = make_customer()
		make_rule(customer, priority=5, create_payment_entry=0)
		high = make_rule(customer, priority=50, create_sales_invoice=0, create_payment_entry=0)
		sales_order = self.order(customer, [{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}])
		run = run_of(sales_order.name)
		self.assertEqual(run.rule, high.name)
		self.assertIn(high.name, run.match_reason)
		self.assertEqual(documents_of(sales_order.name)["Sales Invoice"], [])

	def test_conditions_on_total_and_filters_decide_the_rule(self):
		customer = make_customer()
		low = make_rule(customer, priority=1, create_payment_entry=0)
		big = make_rule(customer, priority=90, min_grand_total=1000, create_payment_entry=0)
		web = make_rule(
			customer, priority=80, order_filters='[["po_no", "like", "WEB-%"]]', create_payment_entry=0
		)
		item_code = make_item(stock_qty=50)
		small = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 10}])
		large = self.order(customer, [{"item_code": item_code, "qty": 20, "rate": 100}])
		from_web = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 10}], po_no="WEB-1")
		self.assertEqual(run_of(small.name).rule, low.name)
		self.assertEqual(run_of(large.name).rule, big.name)
		self.assertEqual(run_of(from_web.name).rule, web.name)

	def test_no_matching_rule_leaves_the_order_untouched(self):
		customer = make_customer()
		make_rule(make_customer())  # a rule for someone else
		make_rule(customer, enabled=0)
		sales_order = self.order(customer, [{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}])
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "docstatus"), 1)
		self.assertIsNone(run_of(sales_order.name))
		self.assertEqual(
			documents_of(sales_order.name), {"Delivery Note": [], "Sales Invoice": [], "Payment Entry": []}
		)

	def test_master_switch_off_starts_no_run(self):
		customer = make_customer()
		make_rule(customer)
		frappe.db.set_single_value("Sales Automation Settings", "enabled", 0)
		try:
			sales_order = self.order(customer, [{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}])
		finally:
			frappe.db.set_single_value("Sales Automation Settings", "enabled", 1)
		self.assertIsNone(run_of(sales_order.name))


class TestRetryAndResume(EngineTestCase):
	def test_retry_after_the_cause_is_fixed_creates_no_duplicate(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=1)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 3, "rate": 10}])
		run = run_of(sales_order.name)
		engine.process_run(run.name, drain_seconds=0)
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run.name, "status"), "Queued")

		receive_stock(item_code, self.env.warehouse, 5, COMPANY)
		frappe.db.set_value("Sales Automation Run", run.name, "next_retry_at", add_days(nowdate(), -1))
		engine.retry_due_runs()  # enqueues; the worker's job is what runs next
		engine.process_run(run.name, drain_seconds=0)
		engine.process_run(run.name, drain_seconds=0)  # a duplicate job does nothing more

		run.reload()
		self.assertEqual(run.status, "Completed")
		self.assertEqual(run.attempts, 2)
		docs = documents_of(sales_order.name)
		self.assertEqual([len(docs[d]) for d in docs], [1, 1, 1])
		self.assertEqual(self.stock_qty(item_code), 3)

	def test_run_fails_for_good_after_max_attempts_and_notifies_the_rule_owner(self):
		owner = "_sa_rule_owner@example.com"
		ensure_api_user(owner, ["Sales Manager", "System Manager"])
		customer = make_customer()
		frappe.set_user(owner)
		make_rule(customer, execution_mode="Background")
		frappe.set_user("Administrator")
		frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 1)
		try:
			sales_order = self.order(customer, [{"item_code": make_item(stock_qty=0), "qty": 1, "rate": 10}])
			run = run_of(sales_order.name)
			engine.process_run(run.name, drain_seconds=0)
		finally:
			frappe.db.set_single_value("Sales Automation Settings", "max_attempts", 3)
		run.reload()
		self.assertEqual(run.status, "Failed")
		self.assertTrue(
			frappe.db.exists(
				"Notification Log",
				{"for_user": owner, "document_type": "Sales Automation Run", "document_name": run.name},
			)
		)

	def test_resume_after_payment_failure_creates_only_the_payment(self):
		customer = make_customer()
		mode = frappe.get_doc("Mode of Payment", make_mode_of_payment("_SA Broken", self.env.cash_account))
		make_rule(customer, execution_mode="Background", mode_of_payment=mode.name)
		frappe.db.delete("Mode of Payment Account", {"parent": mode.name})  # the account goes missing later
		sales_order = self.order(customer, [{"item_code": make_item(stock_qty=3), "qty": 1, "rate": 10}])
		run = run_of(sales_order.name)
		engine.process_run(run.name, drain_seconds=0)
		run.reload()
		self.assert_steps(
			run, {"Delivery Note": "Completed", "Sales Invoice": "Completed", "Payment Entry": "Failed"}
		)
		before = documents_of(sales_order.name)
		self.assertEqual(before["Payment Entry"], [])

		mode.reload()
		mode.append("accounts", {"company": COMPANY, "default_account": self.env.cash_account})
		mode.save()
		answer = resume_run(run.name)
		run.reload()
		self.assertEqual(answer["status"], "Completed")
		self.assertEqual(answer["payment_entry"], run.payment_entry)

		after = documents_of(sales_order.name)
		self.assertEqual(after["Delivery Note"], before["Delivery Note"])
		self.assertEqual(after["Sales Invoice"], before["Sales Invoice"])
		self.assertEqual(len(after["Payment Entry"]), 1)
		self.assertEqual(run.status, "Completed")
		self.assertEqual(frappe.db.get_value("Sales Invoice", run.sales_invoice, "status"), "Paid")

	def test_resume_is_restricted_to_managers(self):
		user = "_sa_plain_sales_user@example.com"
		ensure_api_user(user, ["Sales User"])
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		sales_order = self.order(customer, [{"item_code": make_item(stock_qty=0), "qty": 1, "rate": 10}])
		run = run_of(sales_order.name)
		frappe.set_user(user)
		with self.assertRaises(frappe.PermissionError):
			resume_run(run.name)  # what the run form's Retry / Resume button calls
		frappe.set_user("Administrator")
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run.name, "attempts"), 0)


class TestPermissions(EngineTestCase):
	def test_nothing_is_created_beyond_what_the_submitting_user_may_create(self):
		user = "_sa_order_clerk@example.com"
		ensure_api_user(user, ["Sales User", "Stock User"])
		self.assertFalse(frappe.has_permission("Payment Entry", "create", user=user))
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=3)
		frappe.set_user(user)
		sales_order = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 10}])
		run = run_of(sales_order.name)
		engine.process_run(run.name, drain_seconds=0)
		frappe.set_user("Administrator")

		run.reload()
		docs = documents_of(sales_order.name)
		self.assertEqual(docs["Payment Entry"], [])
		for row in run.steps:
			allowed = frappe.has_permission(row.step, "create", user=user)
			if row.status == "Failed":
				self.assertIn("permission", row.message.lower())
				break
			self.assertTrue(allowed, row.step)
		failed = [row for row in run.steps if row.status == "Failed"]
		self.assertEqual(len(failed), 1)
		self.assertIn(failed[0].step, ("Sales Invoice", "Payment Entry"))
		self.assertIn("permission", run.error.lower())


class TestBackgroundDraining(EngineTestCase):
	def background_order(self):
		"""A submitted one-line order of a customer with a Background rule, and its queued run."""
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		sales_order = self.order(customer, [{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}])
		return sales_order, run_of(sales_order.name)

	def document_counts(self, sales_order_name):
		return {doctype: len(names) for doctype, names in documents_of(sales_order_name).items()}

	def test_a_job_takes_further_queued_runs_each_as_its_own_submitter(self):
		clerk = "_sa_drain_clerk@example.com"
		ensure_api_user(clerk, ["Sales User", "Sales Manager", "Stock User", "Accounts User"])
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=5)
		first = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 10}])
		frappe.set_user(clerk)
		second = self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 10}])
		frappe.set_user("Administrator")

		engine.process_run(run_of(first.name).name, drain_seconds=60)

		self.assertEqual(run_of(first.name).status, "Completed")
		second_run = run_of(second.name)
		self.assertEqual(second_run.status, "Completed")
		self.assertEqual(frappe.db.get_value("Delivery Note", second_run.delivery_note, "owner"), clerk)
		self.assertEqual(frappe.db.get_value("Payment Entry", second_run.payment_entry, "owner"), clerk)
		# the job queued for the second run finds it taken and does nothing
		engine.process_run(second_run.name, drain_seconds=0)
		self.assertEqual(run_of(second.name).attempts, 1)
		self.assertEqual(frappe.session.user, "Administrator")  # the job's own user again

	def test_a_job_deletes_the_waiting_jobs_of_the_runs_it_takes(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=5)
		orders = [self.order(customer, [{"item_code": item_code, "qty": 1, "rate": 10}]) for _ in range(3)]
		frappe.db.commit()  # each order's job is queued when its submit commits
		jobs = [get_job(engine.order_job_id(order.name)) for order in orders]
		self.assertEqual([job.get_status() for job in jobs], [JobStatus.QUEUED] * 3)
		jobs[2].set_status(JobStatus.STARTED)  # a worker has already taken the third order's job

		engine.process_run(run_of(orders[0].name).name, drain_seconds=60)

		self.assertEqual([run_of(order.name).status for order in orders], ["Completed"] * 3)
		self.assertIsNone(get_job(engine.order_job_id(orders[1].name)))  # deleted before any fork
		self.assertEqual(get_job(engine.order_job_id(orders[2].name)).get_status(), JobStatus.STARTED)
		for order in (orders[0], orders[2]):
			get_job(engine.order_job_id(order.name)).delete()

	def test_a_killed_job_keeps_the_steps_it_finished_and_its_run_is_queued_again_at_once(self):
		sales_order, run = self.background_order()
		frappe.db.commit()

		class WorkerKilled(BaseException):
			pass

		with patch.object(engine.Cycle, "pay", side_effect=WorkerKilled), self.assertRaises(WorkerKilled):
			engine.process_run(run.name, drain_seconds=0)
		frappe.db.rollback()  # what a killed worker's connection does; its order's lock goes with it

		run.reload()
		self.assert_steps(
			run, {"Delivery Note": "Completed", "Sales Invoice": "Completed", "Payment Entry": "Pending"}
		)
		self.assertEqual(frappe.db.get_value("Delivery Note", run.delivery_note, "docstatus"), 1)
		self.assertEqual(frappe.db.get_value("Sales Invoice", run.sales_invoice, "docstatus"), 1)
		self.assertEqual(run.status, "Running")
		self.assertFalse(locks.is_held_elsewhere(sales_order.name))

		# no clock to wait for: nobody holds the order, so the run's worker is gone
		engine.retry_due_runs()
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run.name, "status"), "Queued")
		engine.process_run(run.name, drain_seconds=0)
		run.reload()
		self.assertEqual(run.status, "Completed")
		self.assertEqual(
			self.document_counts(sales_order.name),
			{"Delivery Note": 1, "Sales Invoice": 1, "Payment Entry": 1},
		)

	def test_a_run_changed_elsewhere_while_a_step_runs_is_not_overwritten(self):
		sales_order, run = self.background_order()
		frappe.db.commit()
		pay = engine.Cycle.pay

		def cancelled_meanwhile(cycle):
			# another session (the desk, a cancel) changes the run and commits while the payment is made
			frappe.db.set_value("Sales Automation Run", run.name, "status", "Cancelled")
			frappe.db.commit()
			return pay(cycle)

		with (
			patch.object(engine.Cycle, "pay", cancelled_meanwhile),
			self.assertRaises(frappe.TimestampMismatchError),
		):
			engine.process_run(run.name, drain_seconds=0)
		frappe.db.rollback()

		run.reload()
		self.assertEqual(run.status, "Cancelled")
		self.assertEqual(
			self.document_counts(sales_order.name),
			{"Delivery Note": 1, "Sales Invoice": 1, "Payment Entry": 0},
		)

	def test_a_running_run_is_not_taken_by_another_job(self):
		sales_order, run = self.background_order()
		frappe.db.set_value("Sales Automation Run", run.name, "status", "Running")
		engine.process_run(run.name, drain_seconds=0)
		self.assertEqual(documents_of(sales_order.name)["Delivery Note"], [])
		self.assertEqual(cint(frappe.db.get_value("Sales Automation Run", run.name, "attempts")), 0)
		self.assertEqual(frappe.db.get_value("Sales Automation Run", run.name, "status"), "Running")
