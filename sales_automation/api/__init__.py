# The public endpoints, at stable paths: /api/method/sales_automation.api.<name>
from sales_automation.api.cycle import deliver, invoice, pay, run_sales_cycle

__all__ = ["deliver", "invoice", "pay", "run_sales_cycle"]
