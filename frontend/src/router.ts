import { createRouter, createWebHistory } from 'vue-router'
import { useSession } from '@/auth/session'

export const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/sign-in', name: 'sign-in', component: () => import('@/auth/SignInPage.vue'), meta: { public: true, title: 'Sign in' } },
    { path: '/', name: 'overview', component: () => import('@/features/overview/components/OverviewPage.vue'), meta: { title: 'Overview' } },
    {
      path: '/jobs',
      component: () => import('@/features/jobs/components/JobsPage.vue'),
      meta: { title: 'Jobs' },
      children: [
        { path: '', name: 'jobs', component: { render: () => null } },
        { path: ':id', name: 'job', component: () => import('@/features/jobs/components/JobDetailPanel.vue'), meta: { title: 'Job' } },
      ],
    },
    {
      path: '/services',
      component: () => import('@/features/services/components/ServicesPage.vue'),
      meta: { title: 'Connected services' },
      children: [
        { path: '', name: 'services', component: { render: () => null } },
        {
          path: ':slug/test',
          name: 'service-test',
          component: () => import('@/features/services/components/ConnectionTestDialog.vue'),
          meta: { title: 'Connection test' },
        },
      ],
    },
    {
      path: '/services/:slug/history',
      name: 'service-history',
      component: () => import('@/features/services/components/ServiceHistoryPage.vue'),
      meta: { title: 'Latency and uptime' },
    },
    {
      path: '/services/:slug/resources',
      name: 'service-resources',
      component: () => import('@/features/services/components/ResourceMonitorPage.vue'),
      meta: { title: 'Resources' },
    },
    {
      path: '/errors/patterns',
      name: 'error-patterns',
      component: () => import('@/features/errors/components/ErrorPatternsPage.vue'),
      meta: { title: 'Error patterns' },
    },
    {
      path: '/errors',
      component: () => import('@/features/errors/components/ErrorLogPage.vue'),
      meta: { title: 'Service errors' },
      children: [
        { path: '', name: 'errors', component: { render: () => null } },
        {
          path: ':id',
          name: 'error',
          component: () => import('@/features/errors/components/ErrorInspectorPanel.vue'),
          meta: { title: 'Communication error' },
        },
      ],
    },
    {
      path: '/alerts',
      component: () => import('@/features/alerts/components/AlertsPage.vue'),
      meta: { title: 'Alerts' },
      children: [
        { path: '', name: 'alerts', component: { render: () => null } },
        { path: ':id', name: 'alert', component: () => import('@/features/alerts/components/AlertDetailPanel.vue'), meta: { title: 'Alert' } },
      ],
    },
    { path: '/:pathMatch(.*)*', redirect: '/' },
  ],
})

router.beforeEach(async (to) => {
  // Fetch the screen's code while the key is being checked, not after.
  for (const record of to.matched) {
    const view = record.components?.default
    if (typeof view === 'function') void (view as () => Promise<unknown>)()
  }
  if (to.meta.public) return true
  const session = useSession()
  try {
    if (await session.restore()) return true
  } catch {
    return true // the gateway is unreachable: show the page with its error rather than a sign-in loop
  }
  return { name: 'sign-in', query: to.fullPath !== '/' ? { next: to.fullPath } : {} }
})

router.afterEach((to) => {
  document.title = `${(to.meta.title as string | undefined) ?? 'Dashboard'} · B2X Monitoring`
})
