/**
 * One Sparkify event as a line of a log file: the `i`-th item of session 9 of user 7, a `NextSong` play at
 * `ts = 1541105830796 + i s`. Tests override the fields they are about; keys keep this order either way.
 */
export function eventRecord(i: number, overrides: Record<string, unknown> = {}): string {
  return JSON.stringify({
    artist: 'Test Artist',
    auth: 'Logged In',
    firstName: 'Ann',
    gender: 'F',
    itemInSession: i,
    lastName: 'Lee',
    length: 200.5,
    level: 'free',
    location: 'Somewhere, CA',
    method: 'PUT',
    page: 'NextSong',
    registration: 1540919166796.0,
    sessionId: 9,
    song: 'Title SO1',
    status: 200,
    ts: 1541105830796 + i * 1000,
    userAgent: 'Mozilla/5.0 "quoted" \\ agent',
    userId: '7',
    ...overrides,
  });
}
