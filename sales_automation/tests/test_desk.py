"""What the desk asks the server: the order's automation state and actions, stuck runs, the stuck-orders
report, the run chart and the workspace's records."""

import frappe
from frappe.utils import add_to_date, now_datetime

from sales_automation import engine
from sales_automation.api import desk
from sales_automation.exceptions import InvalidStateError
from sales_automation.sales_automation.dashboard_chart_source.sales_automation_runs_by_status import (
	sales_automation_runs_by_status as runs_chart,
)
from sales_automation.sales_automation.report.orders_stuck_between_steps import (
	orders_stuck_between_steps as stuck_report,
)
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	documents_of,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	run_of,
	test_env,
)


def age(doctype: str, name: str, minutes: int):
	"""Move a record's creation back in time, as if it had waited that long."""
	frappe.db.set_value(
		doctype, name, "creation", add_to_date(now_datetime(), minutes=-minutes), update_modified=False
	)


class TestOrderAutomation(IntegrationTestCase):
	def test_a_completed_run_is_shown_with_its_documents_and_offers_cancel_not_run(self):
		customer = make_customer()
		make_rule(customer)
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=3), "qty": 1, "rate": 25}], customer=customer
		)

		state = desk.order_automation(sales_order.name)

		self.assertEqual(state["run"]["status"], "Completed")
		self.assertEqual(state["run"]["name"], run_of(sales_order.name).name)
		made = documents_of(sales_order.name)
		self.assertEqual(
			[(d["doctype"], d["name"], d["docstatus"]) for d in state["documents"]],
			[
				("Delivery Note", made["Delivery Note"][0], 1),
				("Sales Invoice", made["Sales Invoice"][0], 1),
				("Payment Entry", made["Payment Entry"][0], 1),
			],
		)
		self.assertFalse(state["can_run"])
		self.assertTrue(state["can_cancel"])

	def test_a_failed_run_names_its_step_and_the_order_can_be_run_again(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=0), "qty": 2, "rate": 25}], customer=customer
		)
		engine.execute(run_of(sales_order.name), engine.Mode.WITHOUT_RETRIES)

		state = desk.order_automation(sales_order.name)

		self.assertEqual((state["run"]["status"], state["run"]["failed_step"]), ("Failed", "Delivery Note"))
		self.assertIn("Delivery Note", state["run"]["error"])
		self.assertTrue(state["can_run"])
		self.assertFalse(state["can_cancel"])

	def test_run_for_order_starts_the_matching_rule_for_an_order_submitted_without_automation(self):
		customer = make_customer()
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=3), "qty": 1, "rate": 25}], customer=customer, automate=False
		)
		rule = make_rule(customer)
		self.assertIsNone(run_of(sales_order.name))
		self.assertEqual(desk.order_automation(sales_order.name)["matching_rule"], rule.name)

		state = desk.run_for_order(sales_order.name)

		run = run_of(sales_order.name)
		self.assertEqual((run.status, run.trigger, run.rule), ("Completed", "Manual", rule.name))
		self.assertEqual(state["run"]["status"], "Completed")
		self.assertEqual(len(documents_of(sales_order.name)["Payment Entry"]), 1)

	def test_run_for_order_refuses_an_order_that_already_has_a_run_and_creates_nothing(self):
		customer = make_customer()
		make_rule(customer)
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=3), "qty": 1, "rate": 25}], customer=customer
		)
		runs = frappe.db.count("Sales Automation Run", {"sales_order": sales_order.name})

		with self.assertRaises(InvalidStateError):
			desk.run_for_order(sales_order.name)
		self.assertEqual(frappe.db.count("Sales Automation Run", {"sales_order": sales_order.name}), runs)

	def test_a_user_who_may_not_read_the_order_is_refused(self):
		customer = make_customer()
		make_rule(customer)
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=3), "qty": 1, "rate": 25}], customer=customer
		)
		frappe.set_user("Guest")
		try:
			with self.assertRaises(frappe.PermissionError):
				desk.order_automation(sales_order.name)
		finally:
			frappe.set_user("Administrator")


class TestStuckRuns(IntegrationTestCase):
	def test_the_stuck_filter_lists_runs_not_done_within_the_settings_time_only(self):
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		old, recent = (
			make_sales_order([{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}], customer=customer)
			for _ in range(2)
		)
		age("Sales Automation Run", run_of(old.name).name, 45)
		frappe.db.set_single_value("Sales Automation Settings", "stuck_after_minutes", 30)
		frappe.clear_document_cache("Sales Automation Settings", "Sales Automation Settings")

		stuck = frappe.get_all("Sales Automation Run", filters=desk.stuck_run_filters(), pluck="sales_order")

		self.assertIn(old.name, stuck)
		self.assertNotIn(recent.name, stuck)
		# what the desk's Datetime filter control accepts (frappe.datetime.validate: strict, no microseconds)
		value = desk.stuck_run_filters()[1][3]
		self.assertRegex(value, r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")


class TestOrdersStuckBetweenSteps(IntegrationTestCase):
	def report(self, **filters):
		_columns, data = stuck_report.execute({"company": test_env().company, **filters})
		return {row["sales_order"]: row for row in data}

	def test_orders_are_listed_at_the_step_their_rule_still_waits_for(self):
		customer = make_customer()
		rule = make_rule(customer, execution_mode="Background")
		in_stock = make_item(stock_qty=10)
		done = make_sales_order([{"item_code": in_stock, "qty": 1, "rate": 10}], customer=customer)
		engine.execute(run_of(done.name), engine.Mode.WITH_RETRIES)
		not_delivered = make_sales_order(
			[{"item_code": make_item(stock_qty=0), "qty": 1, "rate": 10}], customer=customer
		)
		engine.execute(run_of(not_delivered.name), engine.Mode.WITHOUT_RETRIES)
		# a run asked for delivery and invoice only (as the step endpoints do): the rule's payment is missing
		not_paid = make_sales_order(
			[{"item_code": in_stock, "qty": 1, "rate": 10}], customer=customer, automate=False
		)
		run = engine.create_run(
			not_paid,
			rule,
			"test",
			"Manual",
			engine.SAME_TRANSACTION,
			steps=[engine.DELIVERY_NOTE, engine.SALES_INVOICE],
		)
		engine.execute(run, engine.Mode.ATOMIC)
		waiting = make_sales_order([{"item_code": in_stock, "qty": 1, "rate": 10}], customer=customer)
		for sales_order in (done, not_delivered, not_paid, waiting):
			for run_name in frappe.get_all(
				"Sales Automation Run", {"sales_order": sales_order.name}, pluck="name"
			):
				age("Sales Automation Run", run_name, 120)
			age("Sales Order", sales_order.name, 120)
		recent = make_sales_order([{"item_code": in_stock, "qty": 1, "rate": 10}], customer=customer)

		rows = self.report(customer=customer)

		self.assertNotIn(done.name, rows)
		self.assertNotIn(recent.name, rows)  # queued a moment ago: not stuck yet
		self.assertEqual(rows[not_delivered.name]["stuck_at"], "Delivery")
		self.assertEqual(rows[not_delivered.name]["run_status"], "Failed")
		self.assertEqual(rows[not_paid.name]["stuck_at"], "Payment")
		self.assertEqual(rows[not_paid.name]["outstanding"], 10)
		self.assertEqual(rows[waiting.name]["stuck_at"], "Delivery")
		self.assertEqual(rows[waiting.name]["run_status"], "Queued")
		self.assertEqual(set(self.report(customer=customer, stuck_at="Payment")), {not_paid.name})

	def test_an_order_no_rule_covers_is_not_stuck(self):
		customer = make_customer()
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}], customer=customer, automate=False
		)
		age("Sales Order", sales_order.name, 120)

		self.assertNotIn(sales_order.name, self.report(customer=customer))

	def test_an_order_without_a_run_is_listed_when_a_rule_matches_it(self):
		customer = make_customer()
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}], customer=customer, automate=False
		)
		age("Sales Order", sales_order.name, 120)
		rule = make_rule(customer, create_delivery_note=0, invoice_source="Sales Order")

		row = self.report(customer=customer)[sales_order.name]

		self.assertEqual((row["stuck_at"], row["run_status"], row["rule"]), ("Billing", "No Run", rule.name))

	def test_a_rule_that_leaves_drafts_is_satisfied_by_the_drafts(self):
		customer = make_customer()
		make_rule(
			customer,
			submit_delivery_note=0,
			create_sales_invoice=0,
			create_payment_entry=0,
			execution_mode="Same Transaction",
		)
		sales_order = make_sales_order(
			[{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}], customer=customer
		)
		self.assertEqual(
			len(
				frappe.get_all(
					"Delivery Note Item", {"against_sales_order": sales_order.name, "docstatus": 0}
				)
			),
			1,
		)
		age("Sales Automation Run", run_of(sales_order.name).name, 120)

		self.assertNotIn(sales_order.name, self.report(customer=customer))


class TestRunsChartAndWorkspace(IntegrationTestCase):
	def test_the_chart_counts_todays_runs_by_status(self):
		customer = make_customer()
		make_rule(customer)
		before = runs_chart.get(filters={"days": 3, "company": test_env().company}, no_cache=1)
		make_sales_order([{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}], customer=customer)

		after = runs_chart.get(filters={"days": 3, "company": test_env().company}, no_cache=1)

		self.assertEqual(len(after["labels"]), 3)

		def completed_today(chart):
			for dataset in chart["datasets"]:
				if dataset["name"] == "Completed":
					return dataset["values"][-1]
			return 0

		self.assertEqual(completed_today(after), completed_today(before) + 1)

	def test_the_workspace_number_cards_and_chart_are_installed(self):
		workspace = frappe.get_doc("Workspace", "Sales Automation")
		cards = [row.number_card_name for row in workspace.number_cards]
		self.assertEqual(len(cards), 4)
		for card in cards:
			self.assertEqual(
				frappe.db.get_value("Number Card", card, "document_type"), "Sales Automation Run"
			)
		self.assertEqual([row.chart_name for row in workspace.charts], ["Sales Automation Runs per Day"])
		self.assertEqual(
			frappe.db.get_value("Dashboard Chart", "Sales Automation Runs per Day", "source"),
			"Sales Automation Runs by Status",
		)
		self.assertTrue(frappe.db.exists("Report", "Orders Stuck Between Steps"))

	def test_the_completed_today_card_counts_a_run_completed_today(self):
		from frappe.desk.doctype.number_card.number_card import get_result

		customer = make_customer()
		make_rule(customer)
		card = frappe.get_doc("Number Card", "Sales Automation Runs Completed Today")
		before = get_result(card.as_dict(), card.filters_json)
		make_sales_order([{"item_code": make_item(stock_qty=2), "qty": 1, "rate": 10}], customer=customer)

		self.assertEqual(get_result(card.as_dict(), card.filters_json), before + 1)


class TestSharedNames(IntegrationTestCase):
	def test_the_desk_gets_the_run_statuses_and_roles_from_the_server_at_boot(self):
		from sales_automation.boot import boot_session

		bootinfo = frappe._dict()
		boot_session(bootinfo)
		names = bootinfo.sales_automation
		# one list of statuses: the DocType's options, the colours the desk shows, the constants
		options = frappe.get_meta("Sales Automation Run").get_field("status").options.split("\n")
		self.assertEqual(set(names["status_colours"]), {option for option in options if option})
		self.assertEqual(names["manager_roles"], ["System Manager", "Sales Manager"])
		self.assertTrue(set(names["active_statuses"]) < set(names["resumable_statuses"]))
