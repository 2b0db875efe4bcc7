// Scenarios of the safety net's warnings (issue 26): desk.mjs runs them with its helpers, as its own.
import { join } from "node:path";

export default ({ URL, ARGS, SHOTS, TIMEOUT, openForm, settle }) => ({
	// Open an order whose run's retry is overdue while the scheduler is disabled: its bar says so in red,
	// with what to do. Then the Sales Automation workspace shows its warning (and none when the server
	// answers that all is well). Back on the order, press the bar's Retry now and watch the run turn
	// Completed.
	async overdue_retry(page) {
		await openForm(page, "Sales Order", ARGS.sales_order);
		const bar = page.locator('.sales-automation-status[data-warning="retry-overdue"]');
		await bar.waitFor({ state: "visible", timeout: TIMEOUT });
		await settle(page);
		const order_bar = {
			text: (await bar.locator(".sales-automation-warning").innerText()).trim(),
			red: await bar.evaluate((element) => element.classList.contains("red")),
			status: await bar.getAttribute("data-status"),
		};
		await page.screenshot({ path: join(SHOTS, "overdue_retry-order.png") });

		await page.goto(`${URL}/app/sales-automation`);
		// the block draws in a shadow root, which playwright's CSS locators pierce
		const warning = page.locator(".sales-automation-safety-net[data-warning]");
		await warning.waitFor({ state: "visible", timeout: TIMEOUT });
		await settle(page);
		const workspace = {
			text: (await warning.innerText()).trim(),
			warning: await warning.getAttribute("data-warning"),
		};
		await page.screenshot({ path: join(SHOTS, "overdue_retry-workspace.png") });
		// and with the answer of a site where all is well, the block keeps quiet
		const status = "**/api/method/sales_automation.health.safety_net_status*";
		await page.route(status, (route) =>
			route.fulfill({
				json: { message: { scheduler: { ok: true, reason: null, last_run: null }, overdue_runs: 0 } },
			})
		);
		await page.reload();
		// only the block's script hides its place in the workspace
		await page.waitForFunction(
			() => {
				const block = document.querySelector('[custom_block_name="Sales Automation Safety Net"]');
				return block && block.closest(".ce-block").hidden;
			},
			null,
			{ timeout: TIMEOUT }
		);
		workspace.quiet_when_well = await page
			.locator(".sales-automation-safety-net")
			.evaluate((box) => box.hidden && !box.dataset.warning);
		await page.unroute(status);

		await openForm(page, "Sales Order", ARGS.sales_order);
		await page.locator(".sales-automation-status .sales-automation-retry-now").click();
		await page.waitForSelector('.sales-automation-status[data-status="Completed"]', { timeout: TIMEOUT });
		await settle(page);
		return {
			order_bar,
			workspace,
			after_retry: {
				status: await page.locator(".sales-automation-status").getAttribute("data-status"),
				warning: await page.locator(".sales-automation-status").getAttribute("data-warning"),
			},
		};
	},
});
