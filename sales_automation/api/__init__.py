# The public endpoints, at stable paths: /api/method/sales_automation.api.<name>
from sales_automation.api.cycle import deliver, invoice, pay, run_sales_cycle
from sales_automation.api.runs import get_run

__all__ = ["deliver", "get_run", "invoice", "pay", "run_sales_cycle"]
