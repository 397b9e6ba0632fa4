// Operators watching the console's Now page during a benchmark: N browser contexts of one headless
// Chromium (each its own cookies, so its own session and SSE stream), each signed in with the admin's
// account. When every page's chart has drawn two live updates, READY_FILE is written; on SIGTERM each
// page's live update count is printed ("page N updates U") and the browser closes. The first page's
// session cookie goes to COOKIE_FILE (a Cookie header), for streams without a browser.
// Arguments: base URL, page count, admin e-mail, password, ready file, cookie file.
const { chromium } = require('playwright-core');
const fs = require('fs');

const [base, count, email, password, readyFile, cookieFile] = process.argv.slice(2);

async function watch(browser) {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${base}/console/login`);
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', password);
  await Promise.all([page.waitForLoadState('load'), page.click('form.sign-in button')]);
  if (page.url() !== `${base}/console/now`) throw new Error(`signed in to ${page.url()}, not the Now page`);
  await page.waitForFunction(() => Number(document.getElementById('stock-chart').dataset.points) >= 2, null, { timeout: 30000 });
  return page;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
    // SIGTERM is this script's signal to report: playwright would close the browser on it first.
    handleSIGTERM: false,
    handleSIGINT: false,
  });
  const pages = [];
  for (let n = 0; n < Number(count); n += 1) pages.push(await watch(browser));
  const cookies = await pages[0].context().cookies();
  fs.writeFileSync(cookieFile, `Cookie: ${cookies.map((cookie) => `${cookie.name}=${cookie.value}`).join('; ')}\n`);
  fs.writeFileSync(readyFile, 'ready\n');
  await new Promise((resolve) => process.on('SIGTERM', resolve));
  for (const [n, page] of pages.entries()) {
    const updates = await page.evaluate(() => Number(document.getElementById('stock-chart').dataset.points));
    console.log(`page ${n + 1} updates ${updates}`);
  }
  await browser.close();
}

main().catch((error) => { console.error(error); process.exit(1); });
