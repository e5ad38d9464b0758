import { describe, expect, it } from 'vitest';
import {
  PermissionCatalogue,
  compilePermissions,
  effectivePermissions,
  isPermissionName,
  parsePermissionPattern,
} from './permissions.js';

describe('parsePermissionPattern', () => {
  it('reads "*" as every permission', () => {
    expect(parsePermissionPattern('*')).toEqual({ kind: 'all' });
  });

  it('reads "events.*" as the whole events module', () => {
    expect(parsePermissionPattern('events.*')).toEqual({ kind: 'module', module: 'events' });
  });

  it('reads "*.read" as the read action in every module', () => {
    expect(parsePermissionPattern('*.read')).toEqual({ kind: 'action', action: 'read' });
  });

  it('reads an exact name such as "events.create"', () => {
    expect(parsePermissionPattern('events.create')).toEqual({ kind: 'exact', name: 'events.create' });
  });

  it('accepts digits, "_" and "-" after the first letter of a segment', () => {
    expect(parsePermissionPattern('event_log2.bulk-create')).toEqual({ kind: 'exact', name: 'event_log2.bulk-create' });
  });

  it.each([
    ['events.'],
    ['Events.create'],
    ['events.Create'],
    ['*.*'],
    ['events.*.x'],
    [''],
    [' '],
    ['events'],
    ['.create'],
    ['events..create'],
    [' events.create'],
    ['events.create '],
    ['events .create'],
    ['**'],
    ['*.'],
    ['1events.create'],
    ['events.*x'],
  ])('rejects %j', (s) => {
    expect(parsePermissionPattern(s)).toBeNull();
  });
});

describe('isPermissionName', () => {
  it('accepts an exact name and refuses patterns', () => {
    expect(isPermissionName('profiles.update')).toBe(true);
    expect(isPermissionName('profiles.*')).toBe(false);
    expect(isPermissionName('*.read')).toBe(false);
    expect(isPermissionName('*')).toBe(false);
  });
});

describe('compilePermissions', () => {
  it('grants an exact name and nothing else', () => {
    const can = compilePermissions(['events.create']);
    expect(can('events.create')).toBe(true);
    expect(can('events.read')).toBe(false);
    expect(can('events.createx')).toBe(false);
    expect(can('profiles.create')).toBe(false);
  });

  it('grants every action of a module for "<module>.*" and no other module', () => {
    const can = compilePermissions(['events.*']);
    expect(can('events.create')).toBe(true);
    expect(can('events.read')).toBe(true);
    expect(can('profiles.read')).toBe(false);
    expect(can('eventsx.read')).toBe(false);
    expect(can('event.read')).toBe(false);
  });

  it('grants one action in every module for "*.<action>" and no other action', () => {
    const can = compilePermissions(['*.read']);
    expect(can('events.read')).toBe(true);
    expect(can('profiles.read')).toBe(true);
    expect(can('events.create')).toBe(false);
    expect(can('events.reader')).toBe(false);
  });

  it('grants everything for "*"', () => {
    const can = compilePermissions(['*']);
    expect(can('events.create')).toBe(true);
    expect(can('anything.at_all')).toBe(true);
  });

  it('denies everything for an empty list', () => {
    const can = compilePermissions([]);
    expect(can('events.create')).toBe(false);
    expect(can('events.read')).toBe(false);
  });

  it('combines exact names, module and action patterns as a union', () => {
    const can = compilePermissions(['profiles.update', 'events.*', '*.read']);
    expect(can('profiles.update')).toBe(true);
    expect(can('events.delete')).toBe(true);
    expect(can('catalog.read')).toBe(true);
    expect(can('profiles.delete')).toBe(false);
    expect(can('catalog.write')).toBe(false);
  });

  it('ignores malformed entries instead of widening the grant', () => {
    const can = compilePermissions(['events.', '*.*', 'Events.create']);
    expect(can('events.create')).toBe(false);
    expect(can('events.read')).toBe(false);
  });
});

describe('effectivePermissions', () => {
  it('grants only what both key and owner grant: key events.* with owner events.create allows only events.create', () => {
    const can = effectivePermissions(['events.*'], ['events.create']);
    expect(can('events.create')).toBe(true);
    expect(can('events.read')).toBe(false);
    expect(can('profiles.read')).toBe(false);
  });

  it('narrows an owner pattern to what the key holds', () => {
    const can = effectivePermissions(['events.read'], ['*']);
    expect(can('events.read')).toBe(true);
    expect(can('events.create')).toBe(false);
  });

  it('intersects action and module patterns', () => {
    const can = effectivePermissions(['*.read'], ['events.*', 'profiles.read']);
    expect(can('events.read')).toBe(true);
    expect(can('profiles.read')).toBe(true);
    expect(can('catalog.read')).toBe(false);
    expect(can('events.create')).toBe(false);
  });

  it('uses the key alone when there is no owner', () => {
    const can = effectivePermissions(['events.*'], null);
    expect(can('events.create')).toBe(true);
    expect(can('events.read')).toBe(true);
    expect(can('profiles.read')).toBe(false);
  });

  it('denies everything when the owner grants nothing', () => {
    const can = effectivePermissions(['*'], []);
    expect(can('events.create')).toBe(false);
    expect(can('profiles.read')).toBe(false);
  });

  it('denies everything when the key grants nothing, whatever the owner holds', () => {
    const can = effectivePermissions([], ['*']);
    expect(can('events.create')).toBe(false);
  });
});

describe('PermissionCatalogue', () => {
  const catalogue = new PermissionCatalogue([
    'profiles.update',
    'events.read',
    'events.create',
    'catalog.read',
    'profiles.read',
    'events.create',
  ]);

  it('holds each route permission once', () => {
    expect([...catalogue.names].sort()).toEqual(['catalog.read', 'events.create', 'events.read', 'profiles.read', 'profiles.update']);
  });

  it('groups permissions by module, modules and names sorted', () => {
    expect([...catalogue.modules.keys()]).toEqual(['catalog', 'events', 'profiles']);
    expect(catalogue.modules.get('events')).toEqual(['events.create', 'events.read']);
    expect(catalogue.modules.get('profiles')).toEqual(['profiles.read', 'profiles.update']);
    expect(catalogue.modules.get('catalog')).toEqual(['catalog.read']);
  });

  it('accepts a known exact name', () => {
    expect(catalogue.problemWith('events.create')).toBeNull();
  });

  it('refuses an exact name no route requires, naming it', () => {
    const problem = catalogue.problemWith('events.delete');
    expect(problem).not.toBeNull();
    expect(problem).toContain('events.delete');
    expect(problem).toMatch(/unknown permission/);
  });

  it('accepts a pattern over a known module', () => {
    expect(catalogue.problemWith('events.*')).toBeNull();
  });

  it('refuses a pattern over an unknown module, naming it', () => {
    const problem = catalogue.problemWith('billing.*');
    expect(problem).not.toBeNull();
    expect(problem).toContain('billing.*');
  });

  it('accepts "*.read" and "*" as they stand', () => {
    expect(catalogue.problemWith('*.read')).toBeNull();
    expect(catalogue.problemWith('*')).toBeNull();
  });

  it('refuses malformed strings, naming them', () => {
    for (const bad of ['events.', 'Events.create', '*.*', 'events.*.x', '', 'events create']) {
      const problem = catalogue.problemWith(bad);
      expect(problem, bad).not.toBeNull();
      expect(problem).toContain(`"${bad}"`);
    }
  });

  it('is empty when built from no routes and then refuses every exact name', () => {
    const empty = new PermissionCatalogue([]);
    expect(empty.modules.size).toBe(0);
    expect(empty.problemWith('events.create')).not.toBeNull();
    expect(empty.problemWith('*')).toBeNull();
  });

  it('accepts in a preset what a key accepts when some route permission matches it', () => {
    for (const good of ['events.create', 'events.*', '*.read', '*.update', '*']) expect(catalogue.presetProblemWith(good), good).toBeNull();
  });

  it('refuses in a preset a "*.<action>" pattern that no route permission matches, naming it', () => {
    const problem = catalogue.presetProblemWith('*.delete');
    expect(problem).toBe('no route permission matches "*.delete"');
    expect(catalogue.problemWith('*.delete')).toBeNull();
  });

  it('refuses in a preset an unknown name or module and a malformed string, as on a key', () => {
    for (const bad of ['events.delete', 'billing.*', '*.*']) expect(catalogue.presetProblemWith(bad), bad).toBe(catalogue.problemWith(bad));
    expect(catalogue.presetProblemWith('events.delete')).toContain('unknown permission');
  });
});
