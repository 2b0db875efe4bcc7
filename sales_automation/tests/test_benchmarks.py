"""A tiny run of the benchmark, so the script cannot rot. The targets are the benchmark's job."""

import json
import os
import tempfile

import frappe

from sales_automation import benchmarks
from sales_automation.tests.base import IntegrationTestCase


class TestBenchmarkScript(IntegrationTestCase):
	def test_tiny_benchmark_measures_every_variant_without_duplicates(self):
		out_dir = tempfile.mkdtemp()
		results = benchmarks.run(
			orders=2, reps=1, lines="1,2", workers=2, out_dir=out_dir, chart=False, profile_reps=1
		)

		self.assertEqual(
			set(results["variants"]), {"a_1", "b_1", "c_1", "i_1", "j_1", "k_1", "r_1", "b_2", "c_2"}
		)
		self.assertTrue(all(stats["median_ms"] > 0 for stats in results["variants"].values()))
		# statements counted around each call: a fresh context re-reads what (c) keeps warm, and the
		# one call sends more than a request that does nothing
		statements = {key: stats["statements"] for key, stats in results["variants"].items()}
		self.assertGreater(statements["k_1"], statements["c_1"])
		self.assertGreater(statements["b_1"], statements["r_1"])
		self.assertGreater(statements["r_1"], 0)
		# and Redis commands: every cycle's documents read and write Frappe's cache
		redis_commands = {key: stats["redis_commands"] for key, stats in results["variants"].items()}
		self.assertTrue(all(redis_commands[key] > 0 for key in ("b_1", "c_1", "i_1", "k_1")))
		self.assertEqual(results["d"]["runs_by_status"], {"Completed": 2})
		self.assertEqual(results["d"]["duplicates"], 0)
		# background throughput with one worker and with two, side by side (one gets half the orders)
		self.assertEqual(
			{count: (d["workers"], d["runs_by_status"]) for count, d in results["d_by_workers"].items()},
			{"1": (1, {"Completed": 1}), "2": (2, {"Completed": 2})},
		)
		# racing callers on one order: one cycle each, the others told it is done (409)
		self.assertEqual(results["g"]["duplicates"], 0)
		self.assertEqual(results["g"]["answers_by_status_code"], {200: 3, 409: 9})
		self.assertEqual(
			set(results["ratios"]),
			{
				"a_over_b",
				"floor_orders_per_minute",
				"d_over_2x_floor",
				"d_workers_over_d_1",
				"f_ms",
				"g_duplicates",
				"b_over_c_1",
				"b_over_c_2",
				"overhead_1",
				"overhead_2",
				"paired_overhead_1",
				"paired_overhead_2",
				"a_over_b_with_no_app_cost",
				"b_over_fresh_floor_1",
			},
		)
		self.assertEqual(
			set(results["paired"]),
			{
				"request_ms",
				"bare_request_ms",
				"app_ms",
				"rest_extra_ms",
				"fresh_context_ms",
				"app_fresh_ms",
				"request_fresh_ms",
			},
		)
		# the profile finds the cycle's documents (most of the call) and names what the app spends on
		profile = results["profile"]
		self.assertGreater(profile["erpnext_share"], 0.5)
		self.assertAlmostEqual(profile["erpnext_share"] + profile["app_share"], 1, places=2)
		self.assertTrue(profile["app_top"])
		with open(os.path.join(out_dir, "profile_b.txt")) as handle:
			self.assertIn("run_sales_cycle", handle.read())
		with open(os.path.join(out_dir, "results.json")) as handle:
			self.assertEqual(json.load(handle)["d"]["duplicates"], 0)
		report = open(os.path.join(out_dir, "results.md")).read()
		self.assertIn("(b) run_sales_cycle, 1 call", report)
		self.assertIn("## Where (b)'s time goes", report)
		self.assertIn("SQL statements per call", report)
		self.assertIn("Redis commands per call", report)
		frappe.db.rollback()

	def test_paired_overhead_takes_the_differences_within_each_round(self):
		from sales_automation.benchmarks.report import paired_overhead

		# round by round (b) is 0.1, 0.1 and 0.05 s slower than (c); the medians differ by only 0.05
		timings = {"b": [1.1, 2.1, 1.35], "c": [1.0, 2.0, 1.3]}
		self.assertAlmostEqual(paired_overhead(timings), 0.1 / 1.3)
