"""The indexes the desk's views of the run history need (issue 26): without them every view scans."""

import frappe

from sales_automation.tests.base import IntegrationTestCase

EXPECTED = {
	"Sales Automation Run": [
		("creation", "status"),  # the run list's sort, the workspace chart
		("status", "creation"),  # the number cards
		("sales_order", "creation"),  # an order's newest run (the stuck-orders report)
		("status", "next_retry_at"),  # the scheduler's due runs
	],
	"Sales Automation Request": [("creation",)],
}


def indexes_of(doctype: str) -> set[tuple[str, ...]]:
	columns = {}
	for row in frappe.db.sql(f"SHOW INDEX FROM `tab{doctype}`", as_dict=True):
		columns.setdefault(row.Key_name, []).append((row.Seq_in_index, row.Column_name))
	return {tuple(column for _seq, column in sorted(index)) for index in columns.values()}


class TestIndexes(IntegrationTestCase):
	def test_the_history_views_have_their_indexes(self):
		for doctype, expected in EXPECTED.items():
			present = indexes_of(doctype)
			for columns in expected:
				with self.subTest(doctype=doctype, columns=columns):
					self.assertIn(columns, present)
