// Validates ServiceMonitor objects (a JSON list on standard input) against the
// Prometheus Operator's types as @kubernetes-models/prometheus-operator ships them,
// installed in the folder given as the argument. Exit 1 with one line per invalid
// object. For scripts/check-deploy.sh.
import { createRequire } from "node:module";
import { join } from "node:path";

const require = createRequire(join(process.argv[2], "package.json"));
const { ServiceMonitor } = require("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor");

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
let bad = 0;
for (const object of objects) {
  try {
    new ServiceMonitor(object).validate();
  } catch (e) {
    bad += 1;
    console.log(`${object.metadata?.name}: ${e.message}`);
  }
}
process.exit(bad ? 1 : 0);
