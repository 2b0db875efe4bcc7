/* global root_element */
// The script of the Sales Automation workspace's Custom HTML Block "Sales Automation Safety Net" (made by
// sales_automation.setup.workspace on install and migrate): says when the scheduler does not retry runs,
// or queued runs are overdue for their retry, with what to do; hides its block when all is well.
const box = root_element.querySelector(".sales-automation-safety-net");
const block = root_element.host.closest(".ce-block");
const esc = frappe.utils.escape_html;

const quiet = () => {
	box.hidden = true;
	box.removeAttribute("data-warning");
	// kept in sight while the workspace is being edited, so it can be moved
	if (block && !root_element.host.closest(".edit-mode")) block.hidden = true;
};

const when = (value) => frappe.datetime.str_to_user(value);

if (!frappe.model.can_read("Sales Automation Run")) {
	quiet();
} else {
	frappe.xcall("sales_automation.health.safety_net_status").then((status) => {
		const scheduler = status.scheduler;
		const lines = [];
		if (!scheduler.ok) lines.push(`<b>${esc(scheduler.reason)}</b>`);
		if (status.overdue_runs) {
			const link = `<a href="#" class="sales-automation-overdue-runs">${esc(__("Open them"))}</a>`;
			lines.push(
				[
					esc(
						status.overdue_runs === 1
							? __("A queued run is overdue for its retry, since {0}.", [
									when(status.overdue_since),
							  ])
							: __("{0} queued runs are overdue for their retry, the oldest since {1}.", [
									status.overdue_runs,
									when(status.overdue_since),
							  ])
					),
					// the scheduler queued them again, but nothing took their jobs
					scheduler.ok ? esc(__("Are the background workers (bench worker) running?")) : "",
					__("{0} to resume them now.", [link]),
				]
					.filter(Boolean)
					.join(" ")
			);
		}
		if (!lines.length) {
			quiet();
			return;
		}
		box.className = "sales-automation-safety-net red";
		box.dataset.warning = scheduler.ok ? "retry-overdue" : "scheduler";
		box.innerHTML = lines.map((line) => `<p>${line}</p>`).join("");
		box.hidden = false;
		if (block) block.hidden = false;
		const link = box.querySelector(".sales-automation-overdue-runs");
		if (link) {
			link.addEventListener("click", (event) => {
				event.preventDefault();
				frappe.route_options = { status: "Queued", next_retry_at: ["<", status.overdue_before] };
				frappe.set_route("List", "Sales Automation Run");
			});
		}
	});
}
