import type { NextConfig } from 'next';

/**
 * Headers that are the same on every response. The Content-Security-Policy carries a fresh nonce
 * per request, so proxy.ts sets it instead.
 */
const securityHeaders = [
  { key: 'X-Content-Type-Options', value: 'nosniff' },
  { key: 'Referrer-Policy', value: 'strict-origin-when-cross-origin' },
  { key: 'X-Frame-Options', value: 'DENY' },
  {
    key: 'Permissions-Policy',
    value: 'camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()',
  },
  { key: 'Cross-Origin-Opener-Policy', value: 'same-origin' },
];

const nextConfig: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // The schema (@namecard/db/schema) and the router's types (@namecard/api) are TypeScript
  // sources in the workspace, not built packages.
  transpilePackages: ['@namecard/api', '@namecard/db'],
  headers() {
    return Promise.resolve([{ source: '/:path*', headers: securityHeaders }]);
  },
};

export default nextConfig;
