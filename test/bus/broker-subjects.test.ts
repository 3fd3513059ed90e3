import { describe, expect, it } from 'vitest';
import { filterToSubjects, subjectToTopic, topicToSubject } from '../../src/bus/broker-subjects.js';

describe('nats subjects', () => {
  it('topics round-trip through subjects, dots and wildcard bytes escaped', () => {
    for (const t of ['rampart/default/reports/web1.example.org', 'a//b', 'x/*/>/ /~', 'ü/ok']) {
      const s = topicToSubject(t);
      expect(s).not.toMatch(/[*> ]/);
      expect(s.split('.').every((tok) => tok.length > 0)).toBe(true);
      expect(subjectToTopic(s)).toBe(t);
    }
    expect(topicToSubject('rampart/f1/reports/web1.example.org')).toBe(
      'rampart.f1.reports.web1~2Eexample~2Eorg',
    );
  });

  it('filters: + is *, a trailing # is the parent and everything below it', () => {
    expect(filterToSubjects('rampart/f/reports/+')).toEqual(['rampart.f.reports.*']);
    expect(filterToSubjects('rampart/f/#')).toEqual(['rampart.f', 'rampart.f.>']);
    expect(filterToSubjects('#')).toEqual(['>']);
  });
});
