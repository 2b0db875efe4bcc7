"""The desk is told as background runs move: `sales_automation_run` events through Frappe's realtime
channel (Redis pub/sub, which the realtime server relays to browsers), read here off Redis itself."""

import json
import time

import frappe
from frappe.realtime import get_doc_room, get_user_room
from frappe.utils.background_jobs import get_redis_connection_without_auth

from sales_automation import engine
from sales_automation.tests import factories
from sales_automation.tests.base import IntegrationTestCase


class TestRealtimeEvents(IntegrationTestCase):
	def setUp(self):
		self.pubsub = get_redis_connection_without_auth().pubsub(ignore_subscribe_messages=True)
		self.pubsub.subscribe("events")

	def tearDown(self):
		self.pubsub.close()

	def events(self, sales_order: str) -> list[tuple[str, dict]]:
		"""(room, message) of every sales_automation_run event about the order published so far."""
		seen, deadline = [], time.monotonic() + 2
		while time.monotonic() < deadline:
			message = self.pubsub.get_message(timeout=0.2)
			if not message:
				continue
			data = json.loads(message["data"])
			if data["event"] == "sales_automation_run" and data["message"]["sales_order"] == sales_order:
				self.assertEqual(data["namespace"], frappe.local.site)
				seen.append((data["room"], data["message"]))
		return seen

	def test_a_background_run_tells_the_order_room_and_its_owner_after_each_commit(self):
		sales_order = factories.order_with_rule(1, 9, execution_mode="Background")
		run = factories.run_of(sales_order.name)
		frappe.db.commit()
		self.events(sales_order.name)  # the queued run's insert

		engine.execute(run, engine.Mode.IN_BACKGROUND)
		frappe.db.commit()

		events = self.events(sales_order.name)
		order_room = [
			message for room, message in events if room == get_doc_room("Sales Order", sales_order.name)
		]
		owner_room = [message for room, message in events if room == get_user_room(run.owner)]
		self.assertEqual(order_room, owner_room)
		self.assertEqual(
			[(message["status"], message["step"]) for message in order_room],
			[
				("Running", "Delivery Note"),
				("Running", "Sales Invoice"),
				("Running", "Payment Entry"),
				("Completed", None),
			],
		)
		self.assertEqual({message["run"] for message in order_room}, {run.name})

	def test_nothing_is_told_of_a_rolled_back_step_nor_of_a_same_transaction_run(self):
		customer = factories.make_customer()
		factories.make_rule(customer)  # same transaction
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=5), "qty": 1, "rate": 9}], customer=customer
		)
		frappe.db.commit()
		self.assertEqual(factories.run_of(sales_order.name).status, "Completed")
		self.assertEqual(self.events(sales_order.name), [])

		factories.make_rule(customer, execution_mode="Background", priority=200)
		sales_order = factories.make_sales_order(
			[{"item_code": factories.make_item(stock_qty=5), "qty": 1, "rate": 9}], customer=customer
		)
		self.events(sales_order.name)
		frappe.db.rollback()
		self.assertEqual(self.events(sales_order.name), [])
