// The admin pages' one stylesheet, sent inline with the CSP nonce: no external fonts or files.

/** The hourly chart's x axis: a grid column per hour, labels spanning 1 to 24 of them (src/ui/health.tsx). */
const CHART_AXIS = [
  ".chart-x.n24{grid-template-columns:repeat(24,1fr)}.chart-x.n168{grid-template-columns:repeat(168,1fr)}",
  ...Array.from({ length: 24 }, (_, i) => `.chart-x .span${i + 1}{grid-column:span ${i + 1}}`),
].join("");

export const CSS = `
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee7;--bg:#f5f7fa;--card:#fff;--accent:#2957c4;--accent-bg:#e8eefc;
--ok:#17703b;--ok-bg:#e3f4e9;--bad:#a52a2a;--bad-bg:#fbe9e9;--wait:#8a5a00;--wait-bg:#fdf2dc;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
*{box-sizing:border-box}
body{margin:0}
a{color:var(--accent)}
header.top{background:#1d2330;color:#fff;padding:.6rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.4rem 1.2rem}
header.top a{color:#fff;text-decoration:none;padding:.2rem .1rem;border-bottom:2px solid transparent}
header.top a.brand{font-weight:700;letter-spacing:.02em;margin-right:.4rem}
header.top nav{display:flex;gap:1rem;flex-wrap:wrap}
header.top nav a[aria-current=page]{border-bottom-color:#8fb0ff}
header.top .who{margin-left:auto;display:flex;align-items:center;gap:.6rem;font-size:.85rem;color:#c9d2e3}
header.top .who button{background:transparent;color:#fff;border:1px solid #7c879c;padding:.2rem .6rem}
main{max-width:76rem;margin:0 auto;padding:1rem}
h1{font-size:1.45rem;margin:.4rem 0 1rem}
h2{font-size:1.15rem;margin:1.6rem 0 .6rem}
h3{font-size:1rem;margin:0 0 .4rem}
.card{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:1rem;margin:0 0 1rem}
.card.narrow{max-width:34rem;margin:2rem auto}
.card.flush{padding:0;overflow-x:auto}
.muted{color:var(--muted)}
.small{font-size:.85rem}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.85em}
pre{background:#f0f2f6;border:1px solid var(--line);border-radius:6px;padding:.6rem;overflow:auto;max-height:24rem;white-space:pre-wrap;word-break:break-all;margin:.3rem 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:var(--card)}
th,td{text-align:left;vertical-align:top;padding:.45rem .6rem;border-bottom:1px solid var(--line)}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:var(--muted);background:#fafbfc}
tbody tr:hover{background:#f8faff}
td.nowrap,th.nowrap{white-space:nowrap}
td.break{word-break:break-word}
form{margin:0}
label{display:block;font-size:.85rem;color:var(--muted);margin-bottom:.2rem}
input,select,textarea,button{font:inherit;color:inherit}
input[type=text],input[type=url],input[type=password],input[type=search],input[type=datetime-local],input[type=number],select{width:100%;padding:.4rem .5rem;border:1px solid #b9c1cf;border-radius:6px;background:#fff;min-height:2.2rem}
select[multiple]{min-height:5.2rem}
button,.button{display:inline-block;padding:.4rem .9rem;border-radius:6px;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer;text-decoration:none;font-size:.9rem;line-height:1.4}
button.secondary,.button.secondary{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:var(--bad);border-color:var(--bad)}
button:disabled{opacity:.5;cursor:not-allowed}
.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(14.5rem,1fr));gap:.7rem 1rem;align-items:start}
.fields .wide{grid-column:1/-1}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-top:.8rem}
.inline-forms{display:flex;flex-wrap:wrap;gap:.4rem}
.check{display:flex;gap:.4rem;align-items:center;color:var(--fg);font-size:.9rem;margin:.15rem 0}
.checks{max-height:7.5rem;overflow-y:auto}
ul.choices{list-style:none;padding:0;display:grid;gap:.5rem}
ul.choices button{width:100%;text-align:left}
.notice{border-radius:6px;padding:.6rem .8rem;margin:0 0 1rem;border:1px solid}
.notice.ok{background:var(--ok-bg);border-color:#9fd2b1;color:var(--ok)}
.notice.bad{background:var(--bad-bg);border-color:#e6b3b3;color:var(--bad)}
.notice.info{background:var(--accent-bg);border-color:#b8c9f2;color:#1c3f8f}
.badge{display:inline-block;border-radius:999px;padding:.05rem .55rem;font-size:.78rem;font-weight:600;white-space:nowrap;background:#eceff4;color:var(--muted)}
.badge.ok{background:var(--ok-bg);color:var(--ok)}
.badge.bad{background:var(--bad-bg);color:var(--bad)}
.badge.wait{background:var(--wait-bg);color:var(--wait)}
.badge.info{background:var(--accent-bg);color:var(--accent)}
.secret{display:block;font-size:1rem;padding:.6rem;background:#fff8e1;border:1px dashed #c9a227;border-radius:6px;word-break:break-all;user-select:all}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.35rem 1rem;margin:0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0;word-break:break-word}
.diff td.old{color:var(--bad);background:#fff6f6}
.diff td.new{color:var(--ok);background:#f4fbf6}
.diff .arrow{color:var(--muted);text-align:center;width:2rem}
.pager{display:flex;gap:.6rem;justify-content:space-between;align-items:center;margin-top:.8rem;flex-wrap:wrap}
.hook-head{display:flex;flex-wrap:wrap;gap:.4rem .8rem;align-items:baseline;justify-content:space-between}
.hook-head .url{word-break:break-all}
.delivery{border-left:4px solid var(--line)}
.delivery.delivered{border-left-color:#5cb77f}
.delivery.failed{border-left-color:#d46a6a}
.delivery.pending{border-left-color:#e0b04a}
section.card>h2:first-child,.card>p:first-child{margin-top:0}
.op{border-top:1px solid var(--line);padding:.8rem 0}
.op .method{display:inline-block;min-width:4.2rem;font-weight:700;font-size:.8rem}
.method.get{color:#17703b}.method.post{color:#2957c4}.method.patch{color:#8a5a00}.method.delete{color:#a52a2a}
fieldset{border:1px solid var(--line);border-radius:6px;padding:.4rem .8rem .6rem;margin:0}
legend{padding:0 .3rem}
.spaced{margin-top:1rem}
.actions.tight{margin-top:0;flex-wrap:nowrap}
.actions.tight select,.actions.tight input{flex:1;min-width:0}
.toolbar{display:flex;flex-wrap:wrap;gap:1rem 2.5rem}
.toolbar form{flex:1 1 18rem;max-width:28rem}
.toc{columns:2 16rem;margin:0;padding-left:1.2rem}
ul.plain{list-style:none;padding-left:0;margin:.3rem 0}
ul.plain li{margin:.15rem 0}
.badge.off{background:#eceff4;color:#4a5263}
.flush-top{margin-top:0}
form.with-why{display:flex;flex-wrap:wrap;align-items:center;gap:.3rem .6rem}
.why{max-width:32rem}
.tabs{display:flex;gap:.9rem;flex-wrap:wrap}
.tabs a[aria-current=page]{font-weight:600;color:var(--fg);text-decoration:none}
dl.stats{margin-bottom:.8rem}
.chart{display:grid;grid-template-columns:auto 1fr;grid-template-rows:9rem auto auto;gap:.2rem .4rem;margin:0}
.chart-y{display:flex;flex-direction:column;justify-content:space-between;text-align:right;line-height:1}
.chart-bars{width:100%;height:100%;display:block;background:#fafbfc}
.chart-bars .ok{fill:#3f9d63}.chart-bars .bad{fill:#d14b4b}
.chart-bars .grid{stroke:#dfe3ea;stroke-width:1}.chart-bars .axis{stroke:#9aa3b2;stroke-width:1}
.chart-x{grid-column:2;display:grid;white-space:nowrap;overflow:hidden}
.chart-x span{overflow:hidden;border-left:1px solid #c9cfd9;padding-left:.2rem}
.chart-x span:first-child:empty{border-left:0}
.chart figcaption{grid-column:1/-1;margin-top:.3rem}
.key{display:inline-block;width:.75rem;height:.75rem;border-radius:2px;vertical-align:-.05rem}
.key.ok{background:#3f9d63}.key.bad{background:#d14b4b;margin-left:.5rem}
td.wrap{overflow-wrap:anywhere}
.op h3 .mono{overflow-wrap:anywhere}
${CHART_AXIS}
@media (max-width:640px){
 main{padding:.6rem}
 .card{padding:.75rem}
 th,td{padding:.4rem}
 .hide-narrow{display:none}
 td.nowrap{white-space:normal;min-width:6.2rem}
 .fields{grid-template-columns:1fr 1fr;gap:.6rem .7rem}
 .fields .span-narrow{grid-column:1/-1}
 dl.facts{grid-template-columns:1fr}
 dl.facts dt{margin-top:.4rem}
 header.top .who{margin-left:0;width:100%}
 /* Tables marked "stack" become one block per row on a phone: every cell at full width, labelled by
    its data-label, instead of columns too narrow to read or a sideways scroll. */
 table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
 table.stack,table.stack tbody,table.stack tr{display:block;width:100%}
 table.stack tr{display:flex;flex-wrap:wrap;gap:.15rem .8rem;padding:.55rem .6rem;border-bottom:1px solid var(--line)}
 table.stack td{display:block;border:0;padding:0;min-width:0}
 table.stack td.full{flex:1 1 100%}
 table.stack td:empty{display:none}
 table.stack td[data-label]::before{content:attr(data-label) ": ";color:var(--muted);font-size:.78rem}
 table.stack td.full[data-label]::before{display:block;content:attr(data-label)}
 table.stack td.arrow{display:none}
 table.stack td.old,table.stack td.new{background:none}
 .scroll.stacked{overflow-x:visible}
 .chart{grid-template-rows:7.5rem auto auto}
 dl.facts.stats{grid-template-columns:6.5rem 1fr;gap:.3rem .6rem}
 dl.facts.stats dt{margin-top:0}
}
`;
