// Status as colour + icon + text (REQ-001 @UI): never colour alone.
import type { JobStatus, ServiceStatus } from '@/generated/graphql'

export type Tone = 'healthy' | 'degraded' | 'unhealthy' | 'unknown' | 'info'
export interface StatusLook {
  label: string
  tone: Tone
  icon: 'check' | 'warn' | 'cross' | 'question' | 'play' | 'clock' | 'stop'
}

export const SERVICE_STATUS: Record<ServiceStatus, StatusLook> = {
  ONLINE: { label: 'Healthy', tone: 'healthy', icon: 'check' },
  DEGRADED: { label: 'Degraded', tone: 'degraded', icon: 'warn' },
  OFFLINE: { label: 'Unhealthy', tone: 'unhealthy', icon: 'cross' },
  UNKNOWN: { label: 'Unknown', tone: 'unknown', icon: 'question' },
}

export const JOB_STATUS: Record<JobStatus, StatusLook> = {
  QUEUED: { label: 'Queued', tone: 'unknown', icon: 'clock' },
  RUNNING: { label: 'Running', tone: 'info', icon: 'play' },
  COMPLETED: { label: 'Completed', tone: 'healthy', icon: 'check' },
  FAILED: { label: 'Failed', tone: 'unhealthy', icon: 'cross' },
  CANCELLED: { label: 'Cancelled', tone: 'degraded', icon: 'stop' },
}

export function serviceLook(status: ServiceStatus | null | undefined): StatusLook {
  return SERVICE_STATUS[status ?? 'UNKNOWN']
}
