"""Background mode end to end: the job is queued after commit and a real RQ worker runs it."""

import frappe

from sales_automation.setup.demo import SALES_ROLES, ensure_api_user
from sales_automation.tests.base import IntegrationTestCase
from sales_automation.tests.factories import (
	documents_of,
	make_customer,
	make_item,
	make_rule,
	make_sales_order,
	run_of,
	wait_for_run_to_end,
	work_off_queue,
)


class TestBackgroundWorker(IntegrationTestCase):
	def test_worker_process_completes_the_run_queued_after_commit(self):
		user = "_sa_worker_clerk@example.com"
		ensure_api_user(user, SALES_ROLES)
		customer = make_customer()
		make_rule(customer, execution_mode="Background")
		item_code = make_item(stock_qty=4)
		frappe.set_user(user)
		sales_order = make_sales_order([{"item_code": item_code, "qty": 2, "rate": 35}], customer=customer)
		frappe.set_user("Administrator")
		run_name = run_of(sales_order.name).name
		frappe.db.commit()  # the job is pushed to the queue only now

		worker = work_off_queue()
		self.assertEqual(worker.returncode, 0, worker.stderr[-2000:])
		wait_for_run_to_end(run_name)
		run = frappe.get_doc("Sales Automation Run", run_name)
		self.assertEqual(run.status, "Completed", run.error)
		self.assertEqual(frappe.db.get_value("Sales Order", sales_order.name, "status"), "Completed")
		docs = documents_of(sales_order.name)
		self.assertEqual([len(docs[d]) for d in docs], [1, 1, 1])
		self.assertEqual(frappe.db.get_value("Payment Entry", docs["Payment Entry"][0], "owner"), user)
