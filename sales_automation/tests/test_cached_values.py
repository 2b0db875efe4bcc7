"""Frappe's Redis-cached values a cycle reads, fetched in one round trip as the next cycle starts
(cached_values): what is fetched, that it is what Frappe's own reads find, and that changes still show."""

from contextlib import contextmanager
from unittest.mock import patch

import redis

import frappe

from sales_automation import cached_values
from sales_automation.api import run_sales_cycle
from sales_automation.rules import find_rule
from sales_automation.tests.base import EndpointTestCase
from sales_automation.tests.factories import (
	add_custom_field,
	make_customer,
	make_item,
	make_rule,
	order_payload,
	test_env,
)


@contextmanager
def redis_round_trips():
	"""The commands this process sends to Redis, one list per round trip (a pipeline is one)."""
	sent = []
	command, pipeline = redis.Redis.execute_command, redis.client.Pipeline.execute

	def one_command(client, *args, **options):
		sent.append([args[0]])
		return command(client, *args, **options)

	def one_pipeline(client, *args, **options):
		sent.append([queued[0][0] for queued in client.command_stack])
		return pipeline(client, *args, **options)

	with (
		patch.object(redis.Redis, "execute_command", one_command),
		patch.object(redis.client.Pipeline, "execute", one_pipeline),
	):
		yield sent


def reads(round_trips: list[list[str]]) -> int:
	return sum(1 for commands in round_trips for command in commands if command in ("GET", "HGET"))


def new_request():
	"""Frappe's per-request copy of Redis's values empty, as every request and job starts it."""
	frappe.local.cache = {}


class TestCachedValues(EndpointTestCase):
	def setUp(self):
		cached_values._REMEMBERED.pop(frappe.local.site, None)
		self.addCleanup(cached_values._REMEMBERED.pop, frappe.local.site, None)

	def cycle_reading(self, *documents: tuple[str, str], doctypes: tuple[str, ...] = ()):
		"""A request's cycle as the engine runs it: the fetch, what the cycle reads (metadata, Settings,
		documents), then remember."""
		new_request()
		cached_values.prefetch()
		self.read(*documents, doctypes=doctypes)
		cached_values.remember()

	def read(self, *documents: tuple[str, str], doctypes: tuple[str, ...] = ()):
		for doctype in ("Sales Invoice", *doctypes):
			frappe.get_meta(doctype)
		frappe.get_cached_doc("Selling Settings")
		for doctype, name in documents:
			frappe.get_cached_doc(doctype, name)

	def test_what_the_last_two_cycles_both_read_is_fetched_in_one_round_trip_but_no_document(self):
		item_code, only_first = make_item(), make_item()
		self.cycle_reading(("Item", item_code), doctypes=("Delivery Note",))
		self.cycle_reading(("Item", item_code), ("Item", only_first))

		new_request()
		with redis_round_trips() as sent:
			cached_values.prefetch()
		self.assertEqual(len(sent), 1)

		with redis_round_trips() as sent:
			meta = frappe.get_meta("Sales Invoice")
			selling_settings = frappe.get_cached_doc("Selling Settings")
		self.assertEqual(sent, [])
		self.assertEqual(
			[df.fieldname for df in meta.fields],
			[df.fieldname for df in frappe.get_meta("Sales Invoice", cached=False).fields],
		)
		self.assertEqual(
			selling_settings.so_required, frappe.db.get_single_value("Selling Settings", "so_required")
		)
		# read by one cycle only, and a document's own copy (another order reads other items)
		for read in (
			lambda: frappe.get_meta("Delivery Note"),
			lambda: frappe.get_cached_doc("Item", item_code),
		):
			with redis_round_trips() as sent:
				read()
			self.assertEqual(reads(sent), 1)

	def test_nothing_is_fetched_before_two_cycles_have_read_it_or_twice_in_one_request(self):
		self.cycle_reading()
		new_request()
		with redis_round_trips() as sent:
			cached_values.prefetch()
		self.assertEqual(sent, [])  # one cycle's reads may be that order's alone

		self.cycle_reading()
		new_request()
		cached_values.prefetch()
		with redis_round_trips() as sent:
			cached_values.prefetch()
		self.assertEqual(sent, [])  # all held already

	def test_a_change_after_the_fetch_shows_as_it_does_after_frappes_own_read(self):
		was = frappe.db.get_single_value("Selling Settings", "cust_master_name")
		self.addCleanup(frappe.db.set_single_value, "Selling Settings", "cust_master_name", was)
		for _ in range(2):
			self.cycle_reading()
		new_request()
		cached_values.prefetch()
		self.assertIn("Sales Invoice", frappe.local.cache[frappe.cache.make_key("doctype_meta")])
		settings_key = frappe.cache.make_key(
			frappe.get_document_cache_key("Selling Settings", "Selling Settings")
		)
		self.assertIn(settings_key, frappe.local.cache)

		custom_field = add_custom_field(self, "Sales Invoice", "sa_prefetch_test", "Data", "customer")
		self.assertTrue(frappe.get_meta("Sales Invoice").has_field("sa_prefetch_test"))
		custom_field.delete()
		self.assertFalse(frappe.get_meta("Sales Invoice").has_field("sa_prefetch_test"))

		changed = "Naming Series" if was != "Naming Series" else "Customer Name"
		frappe.db.set_single_value("Selling Settings", "cust_master_name", changed)
		self.assertEqual(frappe.get_cached_doc("Selling Settings").cust_master_name, changed)

	def test_a_value_redis_no_longer_holds_is_left_for_frappe_to_read(self):
		was = frappe.db.get_single_value("Selling Settings", "cust_master_name")
		self.addCleanup(frappe.db.set_single_value, "Selling Settings", "cust_master_name", was)
		for _ in range(2):
			self.cycle_reading()
		# changed meanwhile (elsewhere, as far as the next request knows): Frappe drops it from Redis
		changed = "Naming Series" if was != "Naming Series" else "Customer Name"
		frappe.db.set_single_value("Selling Settings", "cust_master_name", changed)
		frappe.db.commit()

		new_request()
		cached_values.prefetch()
		settings_key = frappe.cache.make_key(
			frappe.get_document_cache_key("Selling Settings", "Selling Settings")
		)
		self.assertNotIn(settings_key, frappe.local.cache)
		self.assertEqual(frappe.get_cached_doc("Selling Settings").cust_master_name, changed)

	def test_a_value_the_cycles_no_longer_read_is_dropped_when_they_renew(self):
		def fetched_metadata():
			return frappe.local.cache.get(frappe.cache.make_key("doctype_meta"), {})

		with patch.object(cached_values, "RENEW_EVERY", 3):
			self.cycle_reading(doctypes=("Delivery Note",))
			self.cycle_reading(doctypes=("Delivery Note",))
			# the third cycle fetches the Delivery Note's metadata, which it does not read
			new_request()
			cached_values.prefetch()
			self.assertIn("Delivery Note", fetched_metadata())
			self.read()
			cached_values.remember()
			# so the fourth fetches nothing: what it reads is what the cycles read now
			new_request()
			with redis_round_trips() as sent:
				cached_values.prefetch()
			self.assertEqual(sent, [])
			self.read()
			cached_values.remember()

			new_request()
			cached_values.prefetch()
		self.assertIn("Sales Invoice", fetched_metadata())
		self.assertNotIn("Delivery Note", fetched_metadata())

	def test_a_cycle_reads_frappes_cache_in_a_fraction_of_the_round_trips(self):
		customer, item_code = make_customer(), make_item(stock_qty=10)
		frappe.db.commit()

		def cycle():
			new_request()
			result = run_sales_cycle(
				order=order_payload(customer, item_code, rate=10),
				payment={"mode_of_payment": self.env.cash_mode},
			)
			self.assertEqual(frappe.db.get_value("Sales Invoice", result["sales_invoice"], "status"), "Paid")

		cycle()
		cycle()
		with patch.object(cached_values, "prefetch", lambda: None), redis_round_trips() as without:
			cycle()
		with redis_round_trips() as fetched:
			cycle()
		# each value read its own round trip (about 170) against the few a cycle reads for the first time
		# (the documents it makes) or that Frappe keeps for a while only (not in its per-request copy)
		self.assertGreater(reads(without), 100)
		self.assertLess(reads(fetched), reads(without) / 4)

	def test_the_rules_an_order_tries_cost_no_round_trip_each(self):
		"""An order tries the enabled rules in turn until its own matches: they are read in one query, not
		fetched from Redis one at a time (so a site's rule count does not add to a cycle's round trips)."""
		customer = make_customer()
		rule = make_rule(customer)
		sales_order = frappe.get_doc(
			{"doctype": "Sales Order", "company": test_env().company, "customer": customer}
		)

		def round_trips_to_find_the_rule():
			new_request()
			frappe.get_meta("Sales Automation Rule")  # as the cycle has read it by then
			with redis_round_trips() as sent:
				self.assertEqual(find_rule(sales_order)[0], rule.name)
			return sent

		before = round_trips_to_find_the_rule()
		for _ in range(5):  # tried before the order's own rule, and not met
			make_rule(make_customer(), priority=rule.priority + 1)
		self.assertEqual(round_trips_to_find_the_rule(), before)
