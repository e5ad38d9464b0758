import { describe, expect, it } from 'vitest';
import { ADMIN_SCOPES, isAdminScope, scopeGranted, workspaceVisible } from './admin-scopes.js';

describe('admin scopes', () => {
  it('names <resource>:read|write for every resource, and *', () => {
    expect(ADMIN_SCOPES).toContain('*');
    expect(ADMIN_SCOPES).toContain('signing-keys:write');
    expect(ADMIN_SCOPES).toContain('admin-tokens:read');
    expect(isAdminScope('keys:delete')).toBe(false);
    expect(ADMIN_SCOPES.length).toBe(15);
  });

  it('* grants everything; write grants read; read does not grant write; one resource not another', () => {
    expect(scopeGranted(['*'], 'audit:read')).toBe(true);
    expect(scopeGranted(['keys:write'], 'keys:read')).toBe(true);
    expect(scopeGranted(['keys:read'], 'keys:write')).toBe(false);
    expect(scopeGranted(['keys:write'], 'groups:read')).toBe(false);
    expect(scopeGranted([], 'keys:read')).toBe(false);
  });

  it('a confined grant sees only its workspaces, and nothing outside any workspace', () => {
    const grant = { scopes: ['*'], workspaces: new Set(['a']) };
    expect(workspaceVisible(grant, 'a')).toBe(true);
    expect(workspaceVisible(grant, 'b')).toBe(false);
    expect(workspaceVisible(grant, null)).toBe(false);
    expect(workspaceVisible({ scopes: ['*'], workspaces: null }, null)).toBe(true);
  });
});
