// The console in Chromium, as scripts/console-browser runs it: every check that fails is listed, then the
// process exits 1. Arguments: base URL, screenshot directory, admin e-mail, user e-mail, password, a
// running execution, a parked outbox row, a settled day, the coupon policy of the rush that RUSH_COMMAND
// starts while the Now page watches, a FAILED execution, the settled day's settlement line count.
const { spawn } = require('child_process');
const { chromium } = require('playwright-core');
const fs = require('fs');
const path = require('path');

const [base, out, adminEmail, userEmail, password, running, parked, day, policy, failed, lines] = process.argv.slice(2);
const failures = [];
const check = (holds, what) => { if (!holds) failures.push(what); };

async function signIn(page, email) {
  await page.goto(`${base}/console/login`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForLoadState('load'), page.click('form.sign-in button')]);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
  });
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1400, height: 900 } });
  const errors = [];
  const outside = [];
  context.on('request', (request) => {
    if (new URL(request.url()).hostname !== '127.0.0.1') outside.push(request.url());
  });
  const page = await context.newPage();
  // The user's refused sign-in answers 403 on purpose: the one error status the browser may report.
  const refusedSignIn = (message) => message.text().includes('403') && message.location().url === `${base}/console/login`;
  page.on('console', (message) => {
    if (message.type() === 'error' && !refusedSignIn(message)) errors.push(`${message.text()} (${message.location().url})`);
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  const shoot = (name) => page.screenshot({ path: path.join(out, `${name}.png`), fullPage: true });

  await page.goto(`${base}/console/jobs`);
  check(page.url() === `${base}/console/login`, `an anonymous visitor is sent to sign in (at ${page.url()})`);
  await shoot('sign-in');
  await signIn(page, userEmail);
  check((await page.textContent('p.error')).includes('may not use the console'), 'a user is refused');
  await page.goto(`${base}/console/workers`);
  check(page.url() === `${base}/console/login`, 'a user gets no console page');

  await signIn(page, adminEmail);
  check(page.url() === `${base}/console/now`, `an admin lands on Now (at ${page.url()})`);
  const left = `tr[data-policy="${policy}"] td.left`;
  check((await page.textContent(left)) === '1500', 'the policy has all 1,500 left');
  await page.waitForSelector('#stock-chart canvas', { timeout: 5000 });
  // Every value the page shows while the rush drains the stock, as the live updates swap it in.
  await page.evaluate((selector) => {
    window.seenLeft = [];
    document.addEventListener('htmx:afterSettle', () => {
      const cell = document.querySelector(selector);
      if (cell && window.seenLeft[window.seenLeft.length - 1] !== cell.textContent) window.seenLeft.push(cell.textContent);
    });
  }, left);
  const [program, ...rushArgs] = process.env.RUSH_COMMAND.split(' ');
  const rush = spawn(program, rushArgs, { stdio: 'ignore' });
  const rushed = new Promise((resolve) => rush.on('exit', resolve));
  try {
    await page.waitForFunction((selector) => document.querySelector(selector).textContent === '0', left, { timeout: 90000 });
  } catch (error) {
    check(false, `the rush did not drain the policy on the page (left ${await page.textContent(left)})`);
  }
  check((await rushed) === 0, 'the rush ran');
  const seen = await page.evaluate(() => window.seenLeft);
  check(seen.length >= 3, `the page followed the stock down (${seen.join(' → ')})`);
  check((await page.textContent('td[data-status-code="202"]')) !== '0', 'the V3 answers are counted');
  const points = await page.evaluate(() => Number(document.getElementById('stock-chart').dataset.points));
  check(points >= 3, `the chart drew the drain (${points} points)`);
  await shoot('now');
  await page.goto(`${base}/console/jobs`);
  const failedStatus = `tr[data-execution="${failed}"] .status`;
  check((await page.textContent(failedStatus)) === 'FAILED', 'the failed settlement run is shown FAILED');
  await shoot('jobs');
  await page.click(`tr[data-execution="${failed}"] a.action`);
  await shoot('confirm-restart');
  await Promise.all([page.waitForLoadState('load'), page.click('form.confirm button')]);
  check((await page.textContent('.outcome')).includes('Restart of execution'), 'the restart is queued');
  await page.goto(`${base}/console/jobs`);
  try {
    await page.waitForFunction((selector) => document.querySelector(selector).textContent === 'COMPLETED', failedStatus, { timeout: 60000 });
  } catch (error) {
    check(false, `the restarted run did not complete on the page (${await page.textContent(failedStatus)})`);
  }
  await shoot('jobs-restarted');

  // A form posted without its token, with the admin's own cookie (as a forged cross-site post would be).
  const forged = await context.request.post(`${base}/console/jobs/${running}/stop`, { form: { csrf: 'forged' }, maxRedirects: 0 });
  check(forged.status() === 403, `a post without the CSRF token is refused (got ${forged.status()})`);

  await page.click(`tr[data-execution="${running}"] a.action`);
  await shoot('confirm-stop');
  await Promise.all([page.waitForLoadState('load'), page.click('form.confirm button')]);
  check((await page.textContent('.outcome')).includes('Stop requested'), 'the running job is stopped');

  await page.goto(`${base}/console/workers`);
  await shoot('workers');
  await page.click(`tr[data-outbox-row="${parked}"] a.action`);
  await Promise.all([page.waitForLoadState('load'), page.click('form.confirm button')]);
  check((await page.textContent('.outcome')).includes('queued again'), 'the parked row is re-driven');
  await page.goto(`${base}/console/workers`);
  check((await page.textContent('table.actions')).includes(adminEmail), 'the re-drive is listed with who did it');

  await page.goto(`${base}/console/settlement`);
  await shoot('settlement');
  await page.click(`tr[data-day="${day}"] a`);
  check(page.url() === `${base}/console/settlement/${day}`, 'the day opens');
  await shoot('settlement-day');
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('a.download')]);
  const csv = fs.readFileSync(await download.path(), 'utf8').trim().split('\n');
  check(csv[0].startsWith('business_date,event,order_id') && csv.length === Number(lines) + 1,
    `the day's CSV has its ${lines} lines (${csv.length - 1})`);

  await page.goto(`${base}/console/lookup`);
  await page.fill('input[name=q]', adminEmail);
  await Promise.all([page.waitForLoadState('load'), page.click('form.filters button')]);
  check(await page.isVisible('h2[data-user]'), 'support finds a user by e-mail');
  check((await page.textContent('table.logins')).includes('OK'), "the user's sign-ins are listed");
  await shoot('lookup');

  const dark = await browser.newContext({ colorScheme: 'dark', viewport: { width: 1400, height: 900 } });
  await dark.addCookies(await context.cookies());
  const darkPage = await dark.newPage();
  await darkPage.goto(`${base}/console/jobs`);
  const background = await darkPage.evaluate(() => getComputedStyle(document.body).backgroundColor);
  check(background !== 'rgb(255, 255, 255)', `dark mode follows the OS (background ${background})`);
  await darkPage.screenshot({ path: path.join(out, 'jobs-dark.png'), fullPage: true });

  check(errors.length === 0, `the browser logged errors: ${errors.join(' | ')}`);
  check(outside.length === 0, `requests left 127.0.0.1: ${outside.join(' ')}`);
  await browser.close();
}

main().then(
  () => {
    if (failures.length > 0) {
      console.error(failures.map((failure) => `FAILED: ${failure}`).join('\n'));
      process.exit(1);
    }
  },
  (error) => { console.error(error); process.exit(1); },
);
