// Static checks of helm/keygate (helm itself is not installed on these machines): the values and
// the example overrides against values.schema.json, every .Values path a template reads, the
// keygate config the ConfigMap carries passing `keygate check-config`, and the chart's copies
// of the alert rules and dashboards equal to those under deploy/.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Ajv } from 'ajv';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCli } from './support/admin.js';

const REPO = resolve(import.meta.dirname, '..');
const CHART = join(REPO, 'helm/keygate');
const read = (p: string): string => readFileSync(join(CHART, p), 'utf8');
type Values = Record<string, any>;

const values = parse(read('values.yaml')) as Values;
const schema = JSON.parse(read('values.schema.json')) as object;
const validate = new Ajv({ allErrors: true, strictTypes: false }).compile(schema);
const templates = readdirSync(join(CHART, 'templates')).filter((f) => /\.(yaml|tpl|txt)$/.test(f));
const templateText = (name: string): string => read(`templates/${name}`);
const overrides = readdirSync(join(CHART, 'ci')).filter((f) => f.endsWith('-values.yaml')).sort();

const isMap = (v: unknown): v is Values => typeof v === 'object' && v !== null && !Array.isArray(v);

/** helm's merge of -f files over values.yaml: maps merge key by key, anything else replaces, null deletes. */
function helmMerge(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (isMap(v) && isMap(out[k])) out[k] = helmMerge(out[k] as Values, v);
    else out[k] = v;
  }
  return out;
}

const withOverride = (file: string): Values => helmMerge(values, parse(read(`ci/${file}`)) as Values);

function schemaErrors(v: Values): string[] {
  return validate(v) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

describe('helm/keygate values.schema.json', () => {
  it('accepts values.yaml', () => {
    expect(schemaErrors(values)).toEqual([]);
  });

  it('has example overrides for the embedded store, one Redis and a Redis Cluster', () => {
    expect(overrides).toEqual(['embedded-values.yaml', 'redis-cluster-values.yaml', 'redis-values.yaml']);
  });

  for (const file of overrides) {
    it(`accepts values.yaml with ci/${file}`, () => {
      expect(schemaErrors(withOverride(file))).toEqual([]);
    });
  }

  const refused: Array<[string, Values, string]> = [
    ['more than one replica on the embedded store', { replicaCount: 3 }, '/replicaCount'],
    ['autoscaling on the embedded store', { autoscaling: { enabled: true } }, '/autoscaling/enabled'],
    ['the embedded store without a PersistentVolumeClaim', { persistence: { enabled: false } }, '/persistence/enabled'],
    ['Redis with neither url nor cluster', { config: { store: { driver: 'redis' } }, persistence: { enabled: false } }, '/config/store'],
    ['Redis with both url and cluster', { config: { store: { driver: 'redis', url: 'redis://r:6379', cluster: ['redis://r:7000'] } } }, '/config/store'],
    ['a store driver keygate does not have', { config: { store: { driver: 'memcached' } } }, '/config/store/driver'],
    ['a pepper written into the config instead of the Secret', { config: { secrets: { pepper: 'a-literal-pepper-0123456789' } } }, '/config/secrets/pepper'],
    ['an admin token written into the config', { config: { admin: { tokens: [{ name: 'ops', token: 'a-literal-token-0123456789' }] } } }, '/config/admin/tokens/0/token'],
    ['a pepper under 16 characters', { secret: { env: { KEYGATE_PEPPER: 'short' } } }, '/secret/env/KEYGATE_PEPPER'],
    ['a port given as text', { config: { gateway: { listen: { port: '8080' } } } }, '/config/gateway/listen/port'],
    ['an admin Service type that does not exist', { adminService: { type: 'Public' } }, '/adminService/type'],
    ['a misspelt top-level key', { replicas: 3 }, '/'],
    ['a container allowed to escalate privileges', { securityContext: { allowPrivilegeEscalation: true } }, '/securityContext/allowPrivilegeEscalation'],
    ['runAsNonRoot turned off', { podSecurityContext: { runAsNonRoot: false } }, '/podSecurityContext/runAsNonRoot'],
  ];
  for (const [what, override, path] of refused) {
    it(`refuses ${what}, naming ${path}`, () => {
      const errors = schemaErrors(helmMerge(values, override));
      expect(errors.some((e) => e.startsWith(`${path} `)), errors.join('\n')).toBe(true);
    });
  }

  it('accepts many replicas once the store is Redis', () => {
    const v = helmMerge(values, { replicaCount: 5, config: { store: { driver: 'redis', url: '${KEYGATE_REDIS_URL}' } }, persistence: { enabled: false } });
    expect(schemaErrors(v)).toEqual([]);
  });
});

describe('helm/keygate templates', () => {
  /** Every `.Values.a.b.c` a template reads, as the path [a, b, c]. */
  const paths = new Map<string, string>();
  for (const t of templates) {
    for (const m of templateText(t).matchAll(/\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) paths.set(m[1]!.slice(1), t);
  }

  it('read values (a sanity check of the scan itself)', () => {
    expect(paths.size).toBeGreaterThan(40);
    expect(paths.has('config.store.driver')).toBe(true);
  });

  it('read only paths that exist in values.yaml', () => {
    const missing = [...paths].filter(([p]) => {
      let node: unknown = values;
      for (const part of p.split('.')) {
        if (!isMap(node) || !(part in node)) return true;
        node = node[part];
      }
      return false;
    });
    expect(missing.map(([p, t]) => `${t}: .Values.${p}`)).toEqual([]);
  });

  it('close every block they open', () => {
    for (const t of templates) {
      const text = templateText(t);
      const opened = [...text.matchAll(/\{\{-?\s*(if|range|with|define)\b/g)].length;
      const closed = [...text.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
      expect(closed, t).toBe(opened);
    }
  });

  it('render every resource the chart promises', () => {
    const kinds = templates.flatMap((t) => [...templateText(t).matchAll(/^kind: (\w+)$/gm)].map((m) => m[1]));
    expect(kinds.sort()).toEqual([
      'ConfigMap', 'ConfigMap', 'Deployment', 'HorizontalPodAutoscaler', 'NetworkPolicy', 'PersistentVolumeClaim',
      'PodDisruptionBudget', 'PrometheusRule', 'Secret', 'Service', 'Service', 'Service', 'ServiceAccount', 'ServiceMonitor',
    ]);
  });

  it('refuse to render more replicas, autoscaling or no volume on the embedded store, saying why', () => {
    expect(templateText('deployment.yaml').split('\n')[0]).toBe('{{- include "keygate.checkStore" . }}');
    const helpers = templateText('_helpers.tpl');
    expect(helpers).toContain('{{- if gt (int .Values.replicaCount) 1 }}');
    expect(helpers).toContain('fail "replicaCount > 1 needs config.store.driver: redis: the embedded store is one process\'s files on one volume and cannot be shared by replicas"');
    expect(helpers).toContain('fail "autoscaling.enabled needs config.store.driver: redis');
    expect(helpers).toContain('fail "the embedded store needs persistence.enabled: true');
  });

  it('probe the status port, pause before SIGTERM and give the drain longer than the request timeout', () => {
    const d = templateText('deployment.yaml');
    expect(d).toContain('httpGet: { path: /healthz, port: status }');
    expect(d).toContain('httpGet: { path: /readyz, port: status }');
    expect(d).toContain('command: ["sleep", "{{ .Values.preStopSleepSeconds }}"]');
    expect(d).toContain('terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds | default (add .Values.preStopSleepSeconds (div .Values.config.gateway.requestTimeoutMs 1000) 10) }}');
    expect(values.preStopSleepSeconds).toBeGreaterThan(0);
  });

  it('run as non-root on a read-only root filesystem with every capability dropped', () => {
    expect(values.podSecurityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
    expect(values.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const d = templateText('deployment.yaml');
    expect(d).toContain('{{- toYaml .Values.podSecurityContext | nindent 8 }}');
    expect(d).toContain('{{- toYaml .Values.securityContext | nindent 12 }}');
    expect(d).toContain('automountServiceAccountToken: false');
  });

  it('keep the admin Service ClusterIP by default and admit the admin port only from selected pods', () => {
    expect(values.adminService.type).toBe('ClusterIP');
    expect(values.networkPolicy.enabled).toBe(true);
    expect(values.networkPolicy.adminFrom).toEqual([{ podSelector: { matchLabels: { 'keygate.io/admin-client': 'true' } } }]);
    const np = templateText('networkpolicy.yaml');
    // The admin rule exists only with peers: a rule without `from` would admit everyone.
    expect(np).toMatch(/\{\{- with \.Values\.networkPolicy\.adminFrom \}\}\n {4}- ports:\n {8}- \{ port: admin, protocol: TCP \}\n {6}from:/);
  });

  it('agree with the image on ports: config, Dockerfile EXPOSE and HEALTHCHECK', () => {
    const ports = [values.config.gateway.listen.port, values.config.admin.listen.port, values.config.status.listen.port];
    const dockerfile = readFileSync(join(REPO, 'Dockerfile'), 'utf8');
    expect(dockerfile).toContain(`EXPOSE ${ports.join(' ')}`);
    expect(dockerfile).toContain(`KEYGATE_STATUS_PORT || ${values.config.status.listen.port}}/healthz`);
    expect(values.config.store.path).toBe(dockerfile.match(/^VOLUME \["([^"]+)"\]$/m)?.[1]);
  });

  it('copy values.config verbatim into the ConfigMap', () => {
    expect(templateText('configmap.yaml')).toContain('data:\n  gateway.yaml: |\n    {{- toYaml .Values.config | nindent 4 }}\n');
  });
});

describe('the config the ConfigMap carries passes keygate check-config', () => {
  const dir = mkdtempSync(join(tmpdir(), 'keygate-helm-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** The container's environment: the Secret's entries, or stand-ins for an existingSecret's. */
  function envOf(v: Values, configText: string): Record<string, string> {
    const env: Record<string, string> = { NODE_ENV: 'production' };
    if (v.secret.existingSecret) {
      for (const m of configText.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)) env[m[1]!] = `from-the-existing-secret-${m[1]!.length}-0123456789abcdef0123456789`;
    } else Object.assign(env, v.secret.env);
    for (const e of v.extraEnv as Array<{ name: string; value?: string }>) if (e.value !== undefined) env[e.name] = e.value;
    return env;
  }

  const cases: Array<[string, Values]> = overrides.map((f) => [`ci/${f}`, withOverride(f)]);
  for (const [name, v] of cases) {
    it(`for values.yaml with ${name}`, async () => {
      const text = stringify(v.config);
      const file = join(dir, `${basename(name, '.yaml')}.yaml`);
      writeFileSync(file, text);
      const res = await runCli(['check-config', file], envOf(v, text));
      expect(res.stderr).toBe('');
      expect(res.stdout.trim()).toBe('OK');
      expect(res.code).toBe(0);
    });
  }

  it('and refuses it when the Secret lacks the pepper, naming secrets.pepper', async () => {
    const file = join(dir, 'defaults.yaml');
    writeFileSync(file, stringify(values.config));
    const res = await runCli(['check-config', file], { NODE_ENV: 'production', KEYGATE_ADMIN_TOKEN: 'an-admin-token-0123456789', KEYGATE_PEPPER: undefined });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('secrets.pepper');
  });
});

describe("the chart's monitoring files", () => {
  const deploy = join(REPO, 'deploy');
  /** Alert rule files and dashboards under deploy/, by the chart folder that carries them. */
  function originals(): Array<{ file: string; folder: 'prometheus' | 'dashboards' }> {
    const out: Array<{ file: string; folder: 'prometheus' | 'dashboards' }> = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.ya?ml$/.test(e.name) && isMap(parse(readFileSync(p, 'utf8'))) && Array.isArray((parse(readFileSync(p, 'utf8')) as Values).groups)) out.push({ file: p, folder: 'prometheus' });
        else if (e.name.endsWith('.json') && Array.isArray((JSON.parse(readFileSync(p, 'utf8')) as Values).panels)) out.push({ file: p, folder: 'dashboards' });
      }
    };
    walk(deploy);
    return out;
  }

  it('are byte-for-byte copies of the alert rules and dashboards under deploy/', () => {
    const found = originals();
    expect(found.length).toBeGreaterThan(0);
    for (const { file, folder } of found) {
      const copy = join(CHART, 'files', folder, basename(file));
      expect(existsSync(copy), `helm/keygate/files/${folder}/${basename(file)} (copy of ${file})`).toBe(true);
      expect(readFileSync(copy, 'utf8'), copy).toBe(readFileSync(file, 'utf8'));
    }
    const copies = (['prometheus', 'dashboards'] as const).flatMap((f) => readdirSync(join(CHART, 'files', f)).filter((n) => !n.startsWith('.')).map((n) => `${f}/${n}`));
    expect(copies.sort()).toEqual(found.map(({ file, folder }) => `${folder}/${basename(file)}`).sort());
  });
});
